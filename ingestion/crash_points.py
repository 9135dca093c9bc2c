"""Test-only crash points for the crash matrix (tests/test_crash_matrix.py).

``SALESOPS_TEST_CRASH_AT=<point>[:<n>]`` makes this process kill itself with SIGKILL the ``n``-th
time (default 1st) it passes ``crash_point("<point>")``. Unset, as in every real run, it does
nothing. Points (see docs/reliability.md):

- ``crm_batch``: a CRM batch upserted, its cursor and batch record written, not yet committed;
- ``calendar_file``: an ICS file's rows replaced, not yet committed;
- ``publish_table``: a mart copied into ``serving.duckdb.building-<pid>``, the file not complete;
- ``report_write``: the report's temporary file written, not yet renamed over ``report.html``.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_AT_ENV = "SALESOPS_TEST_CRASH_AT"
_passes: Counter[str] = Counter()


def crash_point(name: str) -> None:
    spec = os.environ.get(CRASH_AT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _passes[name] += 1
    if _passes[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
