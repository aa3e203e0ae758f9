"""Per-user directories: where downloaded data, compiled kernels and trained models live.

Every function returns a ``pathlib.Path`` and creates nothing; callers create what they write.
The XDG variables are honoured, so tests (and users) can move everything with one setting.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "tinygrad-digits"


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    base = Path(value) if value else Path.home() / fallback
    return base / APP


def cache_dir() -> Path:
    """Downloaded MNIST files and the Numba kernel cache: ``$XDG_CACHE_HOME/tinygrad-digits``."""
    return _xdg("XDG_CACHE_HOME", ".cache")


def data_home() -> Path:
    """Trained models and user data: ``$XDG_DATA_HOME/tinygrad-digits``."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def models_dir() -> Path:
    """Where ``digits train`` writes models by default and the other commands look for them."""
    return data_home() / "models"


def checkout_root() -> Path:
    """The source checkout this package runs from (meaningful for editable installs)."""
    return Path(__file__).resolve().parent.parent
