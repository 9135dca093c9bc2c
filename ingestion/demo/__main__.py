"""CLI: ``python -m ingestion.demo {generate,change} ...``."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from .profiles import PROFILES


def _date(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {s!r}") from e


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ingestion.demo", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate", help="generate a full demo data set")
    g.add_argument("--out", required=True, type=Path, help="output directory")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--profile", default="S", type=str.upper, choices=sorted(PROFILES))
    g.add_argument("--as-of", type=_date, default=None, help="snapshot date (default: today, UTC)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    c = sub.add_parser("change", help="apply an incremental change set to DIR")
    c.add_argument("--out", required=True, type=Path, help="directory written by 'generate'")
    c.add_argument("--fraction", type=float, default=0.01)
    c.add_argument("--seed", type=int, default=7)
    c.add_argument(
        "--as-of", type=_date, default=None, help="new snapshot date (default: previous as_of + 1 day)"
    )
    c.add_argument("--quiet", action="store_true", help="no progress bar")

    a = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if a.cmd == "generate":
            from .generator import generate

            gt = generate(a.out, seed=a.seed, profile=a.profile, as_of=a.as_of, quiet=a.quiet)
        else:
            from .change import apply_change

            gt = apply_change(a.out, fraction=a.fraction, seed=a.seed, as_of=a.as_of, quiet=a.quiet)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    counts = gt.row_counts
    summary = ", ".join(f"{t}={v['all']}" for t, v in counts.items())
    print(
        f"{a.cmd}: {a.out} as_of={gt.as_of} in {dt:.1f}s: {summary}; "
        f"VEVENTs={gt.data['calendar']['unique_instances']}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
