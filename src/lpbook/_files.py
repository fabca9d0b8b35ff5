"""Files written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a temporary file beside ``path`` for the block to write (``mode`` ``"wb"`` or ``"w"``).

    When the block ends normally the file is flushed to disk and replaces
    ``path`` in one step (``os.replace``), with the permissions a new file gets
    (or those of the file it replaces); when it raises, the temporary file is
    removed and ``path`` is left as it was. Readers never see half a file.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.is_file() else 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def check_writable(path, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` (e.g. ``"--out 'x.npz'"``) unless a file can be written at ``path``.

    Checks that ``path`` is not a folder and that its folder exists and takes
    a new file (by creating and removing a temporary one), so that a long
    computation can refuse at once a place where it could not save its result.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} cannot be written: it is a folder")
    if not path.parent.is_dir():
        raise ValueError(f"{what} cannot be written: its folder does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise ValueError(f"{what} cannot be written: {exc.strerror or exc}") from None
