"""Where a run may write: checked before it starts, so that no problem surfaces after training.

``check_outputs({"--out": path, "--plot": path})`` raises ValueError naming the option for a
path that is not a regular file (a device, a FIFO, a directory), whose folder cannot be made or
written, whose name is too long, that two options share, or that names a file the run reads
(``inputs``). ``check_folder`` does the same for an output folder. ``Ownership`` tells whether a file
this process wrote was replaced since by another writer.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (made if missing), or None."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable"
    return None


def _key(path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _mode(option: str, path: Path) -> int | None:
    """The st_mode of ``path``, None when it does not exist; ValueError naming ``option`` when it
    cannot be looked at (a path through a file, a name too long, a symlink loop)."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"{option} {path}: cannot be written ({e.strerror})") from None


def check_folder(option: str, path) -> None:
    """ValueError naming ``option`` unless ``path`` is a folder (or can be made one) where files
    can be written."""
    path = Path(path)
    mode = _mode(option, path)
    if mode is not None and not stat.S_ISDIR(mode):
        raise ValueError(f"{option} {path}: is not a folder; expected a folder to write results in")
    problem = _folder_problem(path.absolute())
    if problem is not None:
        raise ValueError(f"{option} {path}: {problem}")


def check_outputs(paths: dict, inputs: dict | None = None) -> None:
    """ValueError unless every given path (option name -> path or None) can be written as a
    regular file, no two name the same file, and none names one of ``inputs`` (a name for the
    message -> path: the files the run reads)."""
    read = {_key(path): name for name, path in (inputs or {}).items() if path is not None}
    seen: dict = {}
    for option, path in paths.items():
        if path is None:
            continue
        path = Path(path)
        mode = _mode(option, path)
        if mode is not None and not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a device or a pipe, not a regular file"
            raise ValueError(f"{option} {path}: is {kind}; expected a file to write")
        problem = _folder_problem(path.parent.absolute())
        if problem is not None:
            raise ValueError(f"{option} {path}: {problem}")
        limit = _name_max(path.parent.absolute())
        if len(os.fsencode(path.name)) + 16 > limit:  # room for the temporary name beside it
            raise ValueError(f"{option} {path}: the file name is longer than this file system allows")
        key = _key(path)
        if key in read:
            raise ValueError(f"{option} {path}: is {read[key]}, which it would overwrite")
        if key in seen:
            raise ValueError(f"{option} and {seen[key]} name the same file, {path}")
        seen[key] = option


def _name_max(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        return os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


class Ownership:
    """The identity (device, inode, mtime) of the file last written at ``path`` by this process."""

    def __init__(self, path: str | Path):
        self.path, self.mine, self.lost = Path(path), None, False

    def _identity(self):
        try:
            s = os.stat(self.path)
        except OSError:
            return None
        return (s.st_dev, s.st_ino, s.st_mtime_ns, s.st_size)

    def check(self) -> bool:
        """Whether the file is still the one written last here (True before any write); records
        the loss otherwise."""
        if self.mine is not None and self._identity() != self.mine:
            self.lost = True
        return not self.lost

    def wrote(self) -> None:
        self.mine = self._identity()


def write_atomically(path: str | Path, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``: a
    reader sees the old file or the whole new one, never a part. Returns the path."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
