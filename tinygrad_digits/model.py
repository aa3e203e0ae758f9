"""The CLI's multilayer perceptron: ``ModelSpec``, its layers and its parameters.

A spec describes ``inputs -> hidden layers (size, activation each) -> outputs`` and builds it
as layers (``ModelSpec.network``): ``Dense(h, act)``, with ``Dropout`` after each hidden layer
when ``dropout > 0``, then ``Dense(outputs)`` for the logits. The Sequential names layer ``i``
``dense{i}``, so its params are ``dense{i}.W`` (in, out) and ``dense{i}.b`` (out,): this module
is the only one that relies on those names (``Predictor``'s one-kernel forward pass). Inputs to
``forward`` are already normalized (``normalize``); ``predict_proba`` takes raw [0, 1] images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import layers, ops
from .network import check_scaling
from .kernels import softmax as _softmax

INITS = layers.INITS


@dataclass(frozen=True)
class ModelSpec:
    """Architecture: hidden sizes with one activation each, leaky_relu's alpha, input scaling,
    and the dropout rate after each hidden layer (Keras's meaning: the fraction dropped)."""

    hidden: tuple[int, ...] = (128,)
    activations: tuple[str, ...] = ("relu",)
    alpha: float = 0.1
    inputs: int = 784
    outputs: int = 10
    input_mean: float = 0.0
    input_std: float = 1.0
    dropout: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        acts = (self.activations,) if isinstance(self.activations, str) else tuple(self.activations)
        if len(acts) == 1 and len(self.hidden) > 1:
            acts = acts * len(self.hidden)
        object.__setattr__(self, "activations", acts)
        bad = [h for h in self.hidden if h <= 0]
        if bad:
            raise ValueError(f"hidden layer sizes must be positive, got {bad[0]}")
        if len(acts) != len(self.hidden):
            raise ValueError(
                f"got {len(acts)} activations for {len(self.hidden)} hidden layers: "
                "give one for all layers or one per layer"
            )
        for a in acts:
            ops.activation_code(a)
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha}")
        check_scaling(self.input_mean, self.input_std)
        if not 0 <= self.dropout < 1:
            raise ValueError(
                f"dropout is the fraction of units dropped: expected 0 <= dropout < 1, got {self.dropout}"
            )

    def layers(self) -> list[tuple[str, int, int, str]]:
        """(name, fan_in, fan_out, activation) per dense layer, the output layer last."""
        sizes = (self.inputs, *self.hidden, self.outputs)
        acts = (*self.activations, ops.IDENTITY)
        return [(f"dense{i}", sizes[i], sizes[i + 1], acts[i]) for i in range(len(acts))]

    def network(self, init: str = "auto", dropout: float | None = None) -> layers.Sequential:
        """The spec as layers: Dense(h, act) [Dropout] per hidden layer, then Dense(outputs)."""
        rate = self.dropout if dropout is None else dropout
        stack = []
        for size, act in zip(self.hidden, self.activations):
            stack.append(layers.Dense(size, act, self.alpha, init))
            if rate:
                stack.append(layers.Dropout(rate))
        return layers.Sequential(*stack, layers.Dense(self.outputs, None, self.alpha, init))

    def architecture(self):
        """The spec as a ``network.Network`` (what a model file records of any architecture)."""
        from .network import Network

        return Network(self.network(), (self.inputs,), self.input_mean, self.input_std)

    def n_params(self) -> int:
        return sum(i * o + o for _, i, o, _ in self.layers())

    def describe(self) -> str:
        """e.g. ``784-128relu-10``."""
        mid = [f"{h}{a}" for h, a in zip(self.hidden, self.activations)]
        return "-".join([str(self.inputs), *mid, str(self.outputs)])

    def to_json(self) -> dict:
        """The fields as JSON; ``dropout`` only when it is not 0, so that files of models
        without dropout read the same in versions that predate it."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["activations"] = list(self.activations)
        if not self.dropout:
            del d["dropout"]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ModelSpec":
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model spec fields: {', '.join(sorted(unknown))}")
        for name, value in d.items():
            items = value if name in ("hidden", "activations") else [value]
            kind = str if name == "activations" else int if name in ("hidden", "inputs", "outputs") else float
            if name in ("hidden", "activations") and not isinstance(value, list) or not all(
                    isinstance(v, kind) or kind is float and isinstance(v, int) for v in items) or any(
                    isinstance(v, bool) for v in items):
                raise ValueError(f"model spec field {name} has the wrong type: {str(value)[:40]}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def init_params(spec: ModelSpec, rng: np.random.Generator, init: str = "auto", dtype=np.float32) -> dict:
    """Fresh parameters: {"dense{i}.W": (in, out), "dense{i}.b": zeros (out,)}.

    ``auto`` picks He uniform for the relu family and Glorot uniform for sigmoid, tanh and
    the output layer (Keras's ``he_uniform`` / ``glorot_uniform``); ``normal`` is the
    standard normal of the original student project.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {', '.join(INITS)}")
    return spec.network(init).init(rng, (spec.inputs,), dtype)


def check_params(spec: ModelSpec, params: dict) -> None:
    """Raise ValueError unless params has exactly the spec's keys and shapes."""
    layers.check_params(spec.network(), params, (spec.inputs,))


def normalize(spec, images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Raw [0, 1] images (n, 784) -> the network's inputs, (x - mean) / std, C-contiguous."""
    x = (np.asarray(images, dtype=dtype) - dtype(spec.input_mean)) / dtype(spec.input_std)
    return np.ascontiguousarray(x)


def forward(spec: ModelSpec, params: dict, x: np.ndarray, rng: np.random.Generator | None = None):
    """Logits (n, outputs) of normalized inputs x (n, inputs): ``spec.network().apply``.

    With an ``rng`` (training) and ``spec.dropout > 0``, dropout follows every hidden layer,
    its masks drawn from rng; without one (inference) dropout is the identity.
    """
    return spec.network().apply(params, x, rng)


def loss_and_grads(spec: ModelSpec, params: dict, x: np.ndarray, labels: np.ndarray,
                   rng: np.random.Generator | None = None):
    """Mean softmax cross-entropy of the network on (x (n, inputs), labels (n,)) and its gradient
    by autodiff: (loss: float, grads: dict like params). ``rng`` draws dropout masks (training)."""
    from . import ops
    from .autodiff import value_and_grad

    check_params(spec, params)
    x = np.ascontiguousarray(x, dtype=np.result_type(*params.values()))
    if x.ndim != 2 or x.shape[1] != spec.inputs:
        raise ValueError(f"loss_and_grads: expected x of shape (n, {spec.inputs}), got {x.shape}")
    network = spec.network()
    loss, grads = value_and_grad(lambda p: ops.softmax_cross_entropy(network.apply(p, x, rng), labels))(params)
    return float(loss), grads


def dense_chain(spec: ModelSpec):
    """The spec's layers as fastpath's dense chain: (weight key, bias key, activation) each."""
    from . import fastpath

    return fastpath.dense_chain(spec.network(dropout=0.0))[0]


def predict_proba(spec, params: dict, images: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Class probabilities (n, outputs), in the params' dtype (float32 for trained models), of raw
    [0, 1] images (n, inputs), or (outputs,) for one image (inputs,). ``spec`` is a ModelSpec or
    any model with ``network()``, ``inputs``, ``outputs``, ``input_mean`` and ``input_std``."""
    images = np.asarray(images)
    single = images.ndim == 1
    if single:
        images = images[None, :]
    if images.ndim != 2 or images.shape[1] != spec.inputs:
        raise ValueError(f"predict: expected images of shape (n, {spec.inputs}), got {images.shape}")
    dtype = np.result_type(*params.values()).type
    network = spec.network()
    out = np.empty((len(images), spec.outputs), dtype=dtype)
    for start in range(0, len(images), batch_size):
        x = normalize(spec, images[start : start + batch_size], dtype)
        if hasattr(spec, "input_shape"):
            x = x.reshape(len(x), *spec.input_shape)
        out[start : start + batch_size] = _softmax.softmax(np.ascontiguousarray(network.apply(params, x)))
    return out[0] if single else out


class Predictor:
    """predict_proba for one fixed model and a few images at a time (a drawing, a few files).

    The params are flattened once, and a call is one kernel from raw image to probabilities
    (kernels/fused.predict_rows: the first layer skips the images' blank pixels, and no product
    goes through BLAS) instead of one call per op and array: 10 us instead of 30 for an image. The
    probabilities are predict_proba's to float32 rounding. More than ``rows`` images at a time go
    to predict_proba. The params must not change while the predictor is in use.
    """

    def __init__(self, spec: ModelSpec, params: dict, rows: int = 16):
        from .kernels import sparse

        check_params(spec, params)
        self.spec, self.params, self.rows = spec, params, rows
        self.alpha = float(spec.alpha)
        from .fastpath import flat_layout

        self.layout, keys, _, out_size = flat_layout(dense_chain(spec), params, rows)
        self.dtype = params["dense0.W"].dtype.type
        self.flat = np.concatenate([params[key].reshape(-1) for key, _, _ in keys]).astype(self.dtype)
        self.outs = np.empty(out_size, dtype=self.dtype)
        self.background = normalize(spec, np.zeros((1, spec.inputs)), self.dtype)[0, 0]
        self.mean, self.std = self.dtype(spec.input_mean), self.dtype(spec.input_std)
        self.xbuf = np.empty((rows, spec.inputs), dtype=self.dtype)
        self.w_sums = np.empty(params["dense0.W"].shape[1], dtype=self.dtype)
        sparse.column_sums(params["dense0.W"], self.w_sums)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (n, outputs) of raw [0, 1] images (n, inputs), or (outputs,) for one."""
        from .kernels import fused

        images = np.asarray(images)
        if images.ndim not in (1, 2) or images.shape[-1] != self.spec.inputs or (
                images.ndim == 2 and len(images) > self.rows):
            return predict_proba(self.spec, self.params, images)
        x = np.ascontiguousarray(images.reshape(-1, self.spec.inputs), dtype=self.dtype)
        probs = fused.predict_rows(self.flat, self.layout, self.alpha, x, self.mean, self.std, self.background,
                                   self.w_sums, self.xbuf, self.outs)
        return probs[0] if images.ndim == 1 else probs


def predict(spec: ModelSpec, params: dict, images: np.ndarray) -> np.ndarray:
    """Predicted labels (n,) int64 for raw [0, 1] images (n, inputs)."""
    return np.argmax(predict_proba(spec, params, images), axis=-1)
