"""Deterministic demo data for the salesops pipeline.

``python -m ingestion.demo generate --out DIR [--seed 42] [--profile S] [--as-of YYYY-MM-DD]``
writes a Salesforce-like CRM replica (``crm.sqlite``), one iCalendar file per mailbox
(``calendars/<email>.ics``) and ``ground_truth.json`` describing every planted defect.
``python -m ingestion.demo change --out DIR --fraction 0.01 --seed 7`` applies an incremental
change set to an existing output directory.
"""

__version__ = "1.0.0"

from .generator import generate  # noqa: E402
from .profiles import PROFILES, Profile  # noqa: E402
from .truth import GroundTruth  # noqa: E402

__all__ = ["GroundTruth", "PROFILES", "Profile", "generate", "apply_change"]


def apply_change(*args, **kwargs):
    """See :func:`ingestion.demo.change.apply_change`."""
    from .change import apply_change as _apply

    return _apply(*args, **kwargs)
