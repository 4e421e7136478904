"""Atomic file writes: a reader never sees half a file, and an interrupted write loses nothing done before."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def check_writable(folder: Path, what: str) -> None:
    """Create and delete a probe file in ``folder`` (made if missing), so a run fails before its long work.

    Raises a one-line :class:`~singerbench.errors.UserError` naming ``what`` and the reason (read-only,
    no permission, disk full, not a folder).
    """
    from singerbench.errors import UserError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".singerbench-probe-", suffix=".part")
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UserError(
            f"cannot write {what} in {folder}: {reason}; choose a writable place "
            "(--output for the result, --cache-dir or SINGERBENCH_CACHE_DIR for the cache)"
        ) from None
