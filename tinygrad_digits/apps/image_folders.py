"""Folders of labelled digit images as data: ``DIR/<digit>/*``, the layout ``digits draw`` saves.

The convention is that of Keras's ``image_dataset_from_directory`` and torchvision's
``ImageFolder``: every sub-folder of DIR is named by the digit its images show (``0`` .. ``9``),
and holds image files in any format Pillow reads, at any depth (``DIR/7/monday/a.png`` is a 7).
Every image goes through ``preprocess.preprocess_file``, the preparation ``digits predict``
uses, so a folder's inputs are float32 ``(n, 784)`` in ``[0, 1]``, as MNIST's raw images.

- An image with no ink is counted as "no digit" and left out (never trained on, never scored).
- A file that is not a readable image is an ``ImageError`` naming it, or, with ``skip_bad``,
  left out and counted.
- A sub-folder whose name is not a digit 0-9 is an ``ImageError`` naming it; hidden files and
  folders (``.DS_Store``, ``.thumbnails/``) are ignored, as are plain files directly in DIR.
- A digit folder with no images is reported (``ImageFolder.empty``).
- Each image's pixel count is checked from its header before it is decoded (Pillow's limits
  and ``preprocess.MAX_PIXELS``), and the number of files against the memory available before
  the array of inputs is allocated.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .preprocess import ImageError, preprocess_file

DIGITS = tuple(str(d) for d in range(10))
INPUT_BYTES = 784 * 4  # one float32 network input
MAX_FILES = 1_000_000  # a folder with more files than this is refused before any is read


@dataclass
class ImageFolder:
    """The usable images of a folder and what was left out.

    images: float32 ``(n, 784)`` network inputs in ``[0, 1]``; labels: int64 ``(n,)``; files:
    the n source paths, sorted by digit then path. blank: files with no ink; skipped: (file,
    reason) of bad files left out (only with ``skip_bad``); empty: the digits whose folder
    exists but holds no image file.
    """

    root: Path
    images: np.ndarray
    labels: np.ndarray
    files: list[Path]
    blank: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> list[int]:
        """Usable images per digit, (10,)."""
        return np.bincount(self.labels, minlength=10).tolist()

    def summary(self) -> str:
        """One line: ``drawings: 57 images (0:6 1:5 ...); 2 with no ink, not used; ...``."""
        counts = "  ".join(f"{d}:{n}" for d, n in enumerate(self.counts()))
        parts = [f"{self.root}: {len(self)} images ({counts})"]
        if self.blank:
            parts.append(f"{len(self.blank)} with no ink (no digit), not used")
        if self.skipped:
            parts.append(f"{len(self.skipped)} bad files skipped")
        if self.empty:
            parts.append("empty digit folders: " + ", ".join(map(str, self.empty)))
        return "; ".join(parts)

    def to_json(self) -> dict:
        return {
            "folder": str(self.root),
            "images": len(self),
            "per_digit": self.counts(),
            "no_ink": [str(p) for p in self.blank],
            "skipped": [{"file": str(p), "reason": reason} for p, reason in self.skipped],
            "empty_digits": list(self.empty),
        }

    def subset(self, index: np.ndarray) -> ImageFolder:
        """The images at ``index`` (int array), with this folder's reports."""
        return ImageFolder(self.root, self.images[index], self.labels[index], [self.files[i] for i in index],
                           self.blank, self.skipped, self.empty)


def list_image_folder(root: str | Path) -> tuple[list[tuple[Path, int]], list[int]]:
    """The (file, digit) pairs under ``root`` (sorted by digit, then path) and the digits whose
    folder holds no file. Raises ImageError for a missing root, a root with no digit folder, or
    a sub-folder not named 0-9."""
    root = Path(root)
    if not root.is_dir():
        problem = "no such folder" if not root.exists() else "not a folder"
        raise ImageError(f"{root}: {problem}; expected a folder of digit folders DIR/0 .. DIR/9 holding images")
    files, empty, folders = [], [], 0
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if entry.name not in DIGITS:
            raise ImageError(f"{entry}: a folder of images must be named by its digit, 0-9, got {entry.name!r}")
        folders += 1
        found = sorted(_files_under(entry))
        if not found:
            empty.append(int(entry.name))
        files += [(path, int(entry.name)) for path in found]
        if len(files) > MAX_FILES:
            raise ImageError(f"{root}: more than {MAX_FILES:,} files; expected a folder of digit images")
    if not folders:
        raise ImageError(f"{root}: no digit folders; expected images in DIR/0 .. DIR/9 (the layout digits draw saves)")
    return files, empty


def _files_under(folder: Path):
    """Non-hidden files at any depth (symlinked folders are not followed, so no loop)."""
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith("."):
                yield Path(top) / name


def load_image_folder(root: str | Path, skip_bad: bool = False) -> ImageFolder:
    """Read and prepare every image of ``root`` (see the module doc); returns an ImageFolder.

    Raises ImageError (a ValueError naming the folder or file) for a bad layout, a bad file
    unless ``skip_bad``, or more files than the memory available can hold as inputs.
    """
    from .. import resources

    root = Path(root)
    listed, empty = list_image_folder(root)
    needed, available = len(listed) * INPUT_BYTES, resources.available_memory()
    if needed > available // 2:
        raise ImageError(f"{root}: {len(listed):,} images need {resources.human(needed)}, "
                         f"more than the memory available ({resources.human(available)})")
    images = np.empty((len(listed), 784), np.float32)
    labels, files, blank, skipped = [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a damaged file's warnings: its error says it all
        for path, digit in listed:
            try:
                x = preprocess_file(path)
            except ImageError as e:
                if not skip_bad:
                    raise ImageError(f"{e} (or pass --skip-bad to leave bad files out)") from None
                skipped.append((path, str(e).removeprefix(f"{path}: ")))
                continue
            if x is None:
                blank.append(path)
                continue
            images[len(files)] = x
            labels.append(digit)
            files.append(path)
    return ImageFolder(root, images[: len(files)].copy(), np.asarray(labels, np.int64), files, blank, skipped,
                       empty)


def held_out_split(folder: ImageFolder, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train index, held-out index) of a folder's images: a seeded ``share`` held out, at least
    one when there are 5 images or more (and share > 0), none below that."""
    n = len(folder)
    held = 0 if n < 5 or share <= 0 else max(1, round(share * n))
    order = np.random.default_rng((seed, 2)).permutation(n)
    return np.sort(order[held:]), np.sort(order[:held])
