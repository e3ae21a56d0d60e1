"""Small helpers for the workflow's rule scripts."""

from __future__ import annotations

import contextlib
import os
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(snakemake):
    """Send a rule script's stdout and stderr to its ``log:`` file."""
    log = Path(snakemake.log[0])
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        try:
            yield
        except BaseException:
            traceback.print_exc()  # the reason belongs in the job's own log, not only the scheduler's
            raise


def atomic_path(path: str | os.PathLike) -> Path:
    """A temporary sibling of ``path``; write there, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def write_atomic(path, writer) -> None:
    """Call ``writer(tmp_path)`` and rename the result onto ``path``."""
    tmp = atomic_path(path)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def threads_from(snakemake) -> int:
    return int(getattr(snakemake, "threads", 1) or 1)
