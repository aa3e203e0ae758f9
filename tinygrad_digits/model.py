"""The CLI's networks: ``ModelSpec``, its layers and its parameters.

A spec describes ``inputs -> [conv blocks] -> hidden layers (size, activation each) -> outputs``
and builds it as layers (``ModelSpec.network``). Without ``conv`` it is a multilayer perceptron:
``Dense(h, act)``, with ``Dropout`` after each hidden layer when ``dropout > 0``, then
``Dense(outputs)`` for the logits. With ``conv`` (per block its filters, or a tuple of filters
for several convolutions) the inputs are square one-channel images (side, side, 1), and each
block is ``Conv2D(filters, 3, "valid", "relu")`` per convolution, then ``MaxPool2D(2)``; then
``Flatten``, ``Dropout`` (when ``dropout > 0``) and the dense head as above. ``batch_norm`` adds
a ``BatchNorm`` after every convolution (after the pool, for a block's last one) and between
every hidden Dense and its activation. The Sequential names the dense layers ``dense{i}``, so their params are
``dense{i}.W`` (in, out) and ``dense{i}.b`` (out,), and the convolutions' ``conv2d{i}.W``
(3, 3, c_in, filters) and ``conv2d{i}.b``: this module is the only one that relies on those
names (``Predictor``'s one-kernel forward pass of an MLP). Inputs to ``forward`` are already
normalized (``normalize``, which also gives them the spec's ``input_shape``);
``predict_proba`` takes raw [0, 1] images (n, inputs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import conv_layers, layers, ops
from .conv_notation import conv_blocks, format_conv
from .network import check_scaling
from .norm_layers import BatchNorm

INITS = layers.INITS
KERNEL, POOL = 3, 2  # each conv block: KERNEL x KERNEL valid convolutions, then a POOL x POOL max-pool


def conv_sides(side: int, conv) -> list[int]:
    """The image's side after each conv block, for square inputs of ``side``; ValueError when
    there are more blocks than fit (each convolution takes KERNEL - 1 pixels off the side, then
    the pool needs POOL)."""
    sides = [side]
    for block in conv_blocks(conv):
        inner = sides[-1] - len(block) * (KERNEL - 1)
        if inner < POOL:
            break
        sides.append(inner // POOL)
    if len(conv) >= len(sides):
        path = " -> ".join(map(str, sides))
        raise ValueError(
            f"{side}x{side} inputs take at most {len(sides) - 1} blocks of these (a {KERNEL}x{KERNEL} "
            f"convolution each, then a {POOL}x{POOL} pool: {path}), got {len(conv)}"
        )
    return sides[1 : len(conv) + 1]


@dataclass(frozen=True)
class ModelSpec:
    """Architecture: hidden sizes with one activation each, leaky_relu's alpha, input scaling,
    the dropout rate after each hidden layer (Keras's meaning: the fraction dropped), and the
    filters of each conv block in front (none: an MLP; see the module doc)."""

    hidden: tuple[int, ...] = (128,)
    activations: tuple[str, ...] = ("relu",)
    alpha: float = 0.1
    inputs: int = 784
    outputs: int = 10
    input_mean: float = 0.0
    input_std: float = 1.0
    dropout: float = 0.0
    conv: tuple = ()  # per block its filters, or a tuple of them: (32, (64, 64))
    batch_norm: bool = False

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        blocks = conv_blocks(self.conv)
        if any(not block for block in blocks):
            raise ValueError("conv: a block needs at least one convolution")
        object.__setattr__(self, "conv", tuple(
            tuple(int(c) for c in block) if len(block) > 1 else int(block[0]) for block in blocks))
        if not isinstance(self.batch_norm, (bool, np.bool_)):
            raise ValueError(f"batch_norm must be true or false, got {self.batch_norm!r}")
        object.__setattr__(self, "batch_norm", bool(self.batch_norm))
        acts = (self.activations,) if isinstance(self.activations, str) else tuple(self.activations)
        if len(acts) == 1 and len(self.hidden) != 1:
            acts = acts * len(self.hidden)  # no hidden layer: no activation
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
        if self.conv:
            bad = [c for block in conv_blocks(self.conv) for c in block if c <= 0]
            if bad:
                raise ValueError(f"conv: filters must be positive, got {bad[0]}")
            if math.isqrt(self.inputs) ** 2 != self.inputs:
                raise ValueError(f"conv: expected square one-channel images, got {self.inputs} inputs")
            try:
                conv_sides(math.isqrt(self.inputs), self.conv)
            except ValueError as e:
                raise ValueError(f"conv: {e}") from None

    @property
    def input_shape(self) -> tuple:
        """One input's shape: (inputs,) for an MLP, (side, side, 1) for a convnet."""
        side = math.isqrt(self.inputs)
        return (side, side, 1) if self.conv else (self.inputs,)

    def features(self) -> int:
        """The width of the first dense layer's input: the pixels, or the last conv block's map."""
        if not self.conv:
            return self.inputs
        return conv_sides(math.isqrt(self.inputs), self.conv)[-1] ** 2 * conv_blocks(self.conv)[-1][-1]

    def units(self) -> int:
        """Values one input holds on its way through the network (inputs, every layer's outputs;
        with batch_norm, a normalized layer's twice)."""
        norms = 2 if self.batch_norm else 1
        if not self.conv:
            return self.inputs + norms * sum(self.hidden) + self.outputs
        side, total = math.isqrt(self.inputs), self.inputs
        for block, pooled in zip(conv_blocks(self.conv), conv_sides(side, self.conv)):
            for filters in block:
                side -= KERNEL - 1
                total += norms * side * side * filters
            total += norms * pooled * pooled * block[-1]
            side = pooled
        return total + 2 * self.features() + norms * sum(self.hidden) + self.outputs

    def layers(self) -> list[tuple[str, int, int, str]]:
        """(name, fan_in, fan_out, activation) per dense layer, the output layer last."""
        sizes = (self.features(), *self.hidden, self.outputs)
        acts = (*self.activations, ops.IDENTITY)
        return [(f"dense{i}", sizes[i], sizes[i + 1], acts[i]) for i in range(len(acts))]

    def network(self, init: str = "auto", dropout: float | None = None) -> layers.Sequential:
        """The spec as layers: [Conv2D per convolution, MaxPool2D per block, Flatten, [Dropout]],
        Dense(h, act) [Dropout] per hidden layer, then Dense(outputs); with batch_norm, the
        BatchNorms of the module doc. ``init`` is the dense layers' (a Conv2D's is He uniform,
        for its ReLU)."""
        rate = self.dropout if dropout is None else dropout
        norm = [BatchNorm()] if self.batch_norm else []
        stack = []
        for block in conv_blocks(self.conv):
            for filters in block[:-1]:
                stack += [conv_layers.Conv2D(filters, KERNEL, "valid", "relu"), *norm]
            last = conv_layers.Conv2D(block[-1], KERNEL, "valid", "relu")
            stack += [last, conv_layers.MaxPool2D(POOL), *norm]
        if self.conv:
            stack.append(layers.Flatten())
            if rate:
                stack.append(layers.Dropout(rate))
        for size, act in zip(self.hidden, self.activations):
            if norm:
                dense = layers.Dense(size, None, self.alpha, init)
                stack += [dense, *norm, layers.Activation(act, self.alpha)]
            else:
                stack.append(layers.Dense(size, act, self.alpha, init))
            if rate:
                stack.append(layers.Dropout(rate))
        return layers.Sequential(*stack, layers.Dense(self.outputs, None, self.alpha, init))

    def architecture(self):
        """The spec as a ``network.Network`` (what a model file records of any architecture)."""
        from .network import Network

        return Network(self.network(), self.input_shape, self.input_mean, self.input_std)

    def n_params(self) -> int:
        """Every param's values, a BatchNorm's statistics included (as Keras counts them)."""
        shapes = layers.param_shapes(self.network(), self.input_shape).values()
        return sum(math.prod(shape) for shape in shapes)

    def describe(self) -> str:
        """e.g. ``784-128relu-10``, ``28x28-conv32-conv64-128relu-10`` (each conv block with its
        pool), ``28x28-conv32-conv64+64-128relu-10-bn`` (two convolutions in a block, batch_norm)."""
        mid = [f"{h}{a}" for h, a in zip(self.hidden, self.activations)]
        side = math.isqrt(self.inputs)
        blocks = format_conv(self.conv).split(",") if self.conv else []
        first = [f"{side}x{side}", *(f"conv{b}" for b in blocks)] if self.conv else [str(self.inputs)]
        return "-".join([*first, *mid, str(self.outputs), *(["bn"] if self.batch_norm else [])])

    def to_json(self) -> dict:
        """The fields as JSON; ``dropout`` only when it is not 0 and ``conv`` only for a convnet,
        so that files of the models that predate them read the same in the versions before."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["activations"] = list(self.activations)
        d["conv"] = [list(block) if isinstance(block, tuple) else block for block in self.conv]
        if not self.dropout:
            del d["dropout"]
        if not self.conv:
            del d["conv"]
        if not self.batch_norm:
            del d["batch_norm"]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ModelSpec":
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model spec fields: {', '.join(sorted(unknown))}")
        for name, value in d.items():
            if name == "batch_norm" and isinstance(value, bool):
                continue
            lists = ("hidden", "activations", "conv")
            items = value if name in lists else [value]
            if name == "conv" and isinstance(value, list):  # a block of several convolutions is a list
                items = [c for v in value for c in (v if isinstance(v, list) and v else [v])]
            kind = str if name == "activations" else int if name in ("hidden", "conv", "inputs", "outputs") else float
            if name in lists and not isinstance(value, list) or not all(
                    isinstance(v, kind) or kind is float and isinstance(v, int) for v in items) or any(
                    isinstance(v, bool) for v in items):
                raise ValueError(f"model spec field {name} has the wrong type: {str(value)[:40]}")
        as_tuples = {k: tuple(tuple(b) if isinstance(b, list) else b for b in v) if isinstance(v, list) else v
                     for k, v in d.items()}
        return cls(**as_tuples)


def init_params(spec: ModelSpec, rng: np.random.Generator, init: str = "auto", dtype=np.float32) -> dict:
    """Fresh parameters: {"dense{i}.W": (in, out), "dense{i}.b": zeros (out,)}.

    ``auto`` picks He uniform for the relu family and Glorot uniform for sigmoid, tanh and
    the output layer (Keras's ``he_uniform`` / ``glorot_uniform``); ``normal`` is the
    standard normal of the original student project.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {', '.join(INITS)}")
    return spec.network(init).init(rng, spec.input_shape, dtype)


def check_params(spec: ModelSpec, params: dict) -> None:
    """Raise ValueError unless params has exactly the spec's keys and shapes."""
    layers.check_params(spec.network(), params, spec.input_shape)


def normalize(spec, images: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Raw [0, 1] images (n, 784) -> the network's inputs, (x - mean) / std, C-contiguous, of
    shape (n, *spec.input_shape) when the spec has one ((n, 28, 28, 1) for a convnet)."""
    x = (np.asarray(images, dtype=dtype) - dtype(spec.input_mean)) / dtype(spec.input_std)
    return np.ascontiguousarray(as_input_shape(spec, x))


def as_input_shape(spec, x: np.ndarray) -> np.ndarray:
    """Rows x (n, inputs) as (n, *spec.input_shape), a view; anything else as it is."""
    shape = tuple(getattr(spec, "input_shape", ()))
    if x.ndim == 2 and shape and x.shape[1:] != shape and x.shape[1] == int(np.prod(shape)):
        return x.reshape(len(x), *shape)
    return x


def forward(spec: ModelSpec, params: dict, x: np.ndarray, rng: np.random.Generator | None = None):
    """Logits (n, outputs) of normalized inputs x (n, inputs): ``spec.network().apply``.

    With an ``rng`` (training) and ``spec.dropout > 0``, dropout follows every hidden layer,
    its masks drawn from rng; without one (inference) dropout is the identity.
    """
    return spec.network().apply(params, x, rng)


def loss_and_grads(spec: ModelSpec, params: dict, x: np.ndarray, labels: np.ndarray,
                   rng: np.random.Generator | None = None, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy (``label_smoothing`` as ops') of the network on (x (n, inputs),
    labels (n,)) and its gradient by autodiff: (loss: float, grads: dict like params). ``rng``
    draws dropout masks (training). A convnet's x may also come as (n, *spec.input_shape)."""
    from .autodiff import value_and_grad

    check_params(spec, params)
    x = np.ascontiguousarray(x, dtype=np.result_type(*params.values()))
    if x.ndim < 2 or x.shape[1:] not in ((spec.inputs,), spec.input_shape):
        raise ValueError(f"loss_and_grads: expected x of shape (n, {spec.inputs}), got {x.shape}")
    x = as_input_shape(spec, x)
    network = spec.network()
    loss, grads = value_and_grad(
        lambda p: ops.softmax_cross_entropy(network.apply(p, x, rng), labels, label_smoothing))(params)
    return float(loss), grads


def dense_chain(spec: ModelSpec):
    """The spec's layers as fastpath's dense chain: (weight key, bias key, activation) each; None
    for a convnet."""
    from . import fastpath

    found = fastpath.dense_chain(spec.network(dropout=0.0))
    return None if found is None else found[0]


# Inference (predict_proba, predict and the one-kernel Predictor), in predictor.py
from .predictor import Predictor, predict, predict_proba  # noqa: E402, F401
