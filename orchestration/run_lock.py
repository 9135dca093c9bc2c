"""One nightly run per warehouse at a time: an exclusive OS lock on ``<warehouse>.lock``.

The lock is ``fcntl.flock`` on a file beside the warehouse. The operating system releases it when
the holding process ends, however it ends (a crash or SIGKILL included), so a stale lock file never
blocks the next run; the file's text (pid, start time) only serves the refusal message. The lock is
re-entrant within one process: ``python -m orchestration run`` takes it before starting the job, and
the job's executor takes it again for runs launched from the UI or the schedule.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingestion.warehouse import utc_now

_held: dict[Path, tuple[int, int]] = {}  # lock path -> (file descriptor, depth) held by this process
_guard = threading.Lock()


class RunLockBusy(RuntimeError):
    """Another process holds the warehouse's run lock; ``str()`` is one line."""


def lock_path(warehouse: str | Path) -> Path:
    path = Path(warehouse)
    return path.with_name(f"{path.name}.lock")


@contextmanager
def run_lock(warehouse: str | Path, wait: bool = False, poll_seconds: float = 1.0) -> Iterator[Path]:
    """Hold the warehouse's run lock; refuse (``RunLockBusy``) or, with ``wait``, wait for it."""
    path = lock_path(warehouse).resolve()
    with _guard:
        if path in _held:  # re-entered by the same process (the CLI, then the job's executor)
            descriptor, depth = _held[path]
            _held[path] = (descriptor, depth + 1)
            reentered = True
        else:
            reentered = False
    if not reentered:
        descriptor = _acquire(path, wait, poll_seconds)
        with _guard:
            _held[path] = (descriptor, 1)
    try:
        yield path
    finally:
        with _guard:
            descriptor, depth = _held[path]
            if depth > 1:
                _held[path] = (descriptor, depth - 1)
            else:
                del _held[path]
                os.close(descriptor)  # releases the flock


def _acquire(path: Path, wait: bool, poll_seconds: float) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise RunLockBusy(_busy_message(path)) from None
                time.sleep(poll_seconds)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} since {utc_now():%Y-%m-%d %H:%M:%S} UTC\n".encode(), 0)
        return descriptor
    except BaseException:
        os.close(descriptor)
        raise


def _busy_message(path: Path) -> str:
    try:
        holder = path.read_text().strip() or "unknown process"
    except OSError:
        holder = "unknown process"
    return (
        f"another nightly run holds the lock {path} ({holder}); it was not started, "
        "try again when that run ends (or pass --wait)"
    )
