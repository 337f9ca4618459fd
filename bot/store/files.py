"""Files and directories the bot creates hold members' data: only the bot's own user may read
them (files 0600, directories 0700). Used by the store for the database, and by the bot for the
data directory, the heartbeat and the command hash.

Modes are set on each file rather than through the process umask, so they hold however the bot
is started (`python -m bot`, tests, a tool opening the store) and whatever the umask is, and
nothing else in the process is affected.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "create_private_file",
    "make_private_dir",
    "readable_by_others",
    "write_private",
]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents, each 0700. An existing directory's mode is left
    alone (the operator chose it). Raises `OSError` as `mkdir` does, `NotADirectoryError` if
    `path` is something else."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # created meanwhile by someone else: theirs, left alone
        # mkdir's mode is masked by the umask; chmod makes it exactly 0700.
        directory.chmod(PRIVATE_DIR)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))


def create_private_file(path: Path) -> bool:
    """Create `path` empty and 0600 unless it exists; True if this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private(path: Path, text: str, *, durable: bool = False) -> None:
    """Replace `path` with `text` atomically (a crash never leaves a truncated file), 0600.
    `durable`: fsync before the rename (worth it for files that are costly to lose)."""
    # mkstemp creates the file 0600, so the content is never readable by others, even briefly.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def readable_by_others(path: Path) -> bool:
    """True if the group or others may read `path`."""
    return bool(stat.S_IMODE(path.stat().st_mode) & (stat.S_IRGRP | stat.S_IROTH))
