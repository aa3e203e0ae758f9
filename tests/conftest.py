"""Shared fixtures: a seeded rng, tiny real MNIST data, and a private per-user home.

Every test runs with XDG_DATA_HOME pointing into its own temporary directory, so no test
reads or writes the real per-user models. The Numba kernel cache is shared across the run
(one compile per session), in a directory of the test session.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = ROOT / "data" / "mnist"

if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "tinygrad-digits-test-numba-cache")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Per-user directories inside the test's tmp_path; no download mirror is reachable."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("DIGITS_MNIST_MIRRORS", "http://127.0.0.1:9/")
    monkeypatch.delenv("DIGITS_DATA", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def mnist_splits():
    """The real 48k/12k/10k splits with seed 0, read once per test session."""
    from tinygrad_digits.data import load_splits

    return load_splits(MNIST_DIR, seed=0)


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, mnist_splits):
    """A small trained model (10k images, 3 epochs, 784-128relu-10), trained once per session."""
    from tinygrad_digits.apps import training as app

    path = tmp_path_factory.getbasetemp() / "recognize-model.npz"
    app.train_and_save(app.TrainRun(epochs=3, train_size=10_000), mnist_splits, path)
    return path


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """Per-user directories of the session-wide fixtures (``mnist_splits`` builds the decoded
    MNIST cache) inside the session's temporary directory; ``private_home`` moves each test's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache-session")))
    patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-session")))
    yield
    patch.undo()


# -- Independent references: NumPy written here, never the code under test -------------------


def central_difference(f, x, eps: float = 1e-6):
    """Float64 central differences of the scalar f() with respect to every entry of x, an array
    or a dict of arrays that f reads (changed in place and restored): an array, or a dict of them."""
    if isinstance(x, dict):
        return {key: central_difference(f, value, eps) for key, value in x.items()}
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        kept = x[i]
        x[i] = kept + eps
        up = float(f())
        x[i] = kept - eps
        down = float(f())
        x[i] = kept
        grad[i] = (up - down) / (2 * eps)
    return grad


NUMPY_ACTIVATIONS = {
    "relu": lambda z, alpha: np.maximum(z, 0.0),
    "leaky_relu": lambda z, alpha: np.where(z > 0, z, alpha * z),
    "sigmoid": lambda z, alpha: 1.0 / (1.0 + np.exp(-z)),
    "tanh": lambda z, alpha: np.tanh(z),
    "identity": lambda z, alpha: z,
}


def numpy_mlp_logits(params: dict, x: np.ndarray, activations, alpha: float = 0.1) -> np.ndarray:
    """Logits of dense layers dense0..dense{L} in float64: hidden activations by name, none last."""
    h = np.asarray(x, dtype=np.float64)
    acts = [*activations, "identity"]
    for i, act in enumerate(acts):
        h = NUMPY_ACTIVATIONS[act](h @ params[f"dense{i}.W"].astype(np.float64) + params[f"dense{i}.b"], alpha)
    return h


def numpy_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy in float64, by log-sum-exp."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    log_probs = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())
