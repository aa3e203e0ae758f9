"""A trained model's architecture as data: its layers, the shape of one input and its scaling.

``Network`` is what a model file holds for any architecture (``ModelSpec`` is the CLI's MLP or convnet, a
special case that describes itself the same way, ``ModelSpec.architecture``). Both answer the
calls that evaluation and prediction make: ``network()``, ``inputs``, ``outputs``,
``input_mean``, ``input_std``, ``describe()``, ``n_params()`` and ``to_json()``. Images are
scaled as ``(image - input_mean) / input_std`` before the first layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import conv_layers, layers


def check_scaling(mean, std, where: str = "") -> None:
    """ValueError unless the input scaling is a finite mean and a std in [1e-6, 1e6]."""
    for name, value in (("input_mean", mean), ("input_std", std)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}{name} must be a finite number, got {value!r}")
    if not 1e-6 <= std <= 1e6:
        raise ValueError(f"{where}input_std must be positive, in [1e-6, 1e6], got {std}")


@dataclass(frozen=True, eq=False)
class Network:
    layers: layers.Layer
    input_shape: tuple = (784,)
    input_mean: float = 0.0
    input_std: float = 1.0

    def __post_init__(self):
        if not isinstance(self.layers, layers.Layer):
            raise ValueError(f"Network: expected layers, got {type(self.layers).__name__}")
        shape = tuple(self.input_shape)
        if not shape or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in shape
        ):
            raise ValueError(f"Network: input_shape must be positive integers, got {list(shape)}")
        object.__setattr__(self, "input_shape", tuple(int(n) for n in shape))
        check_scaling(self.input_mean, self.input_std, "Network: ")
        out = self.layers.output_shape(self.input_shape)
        if len(out) != 1:
            raise ValueError(f"Network: the layers must end in a vector of class scores, got shape {out}")

    def network(self) -> layers.Layer:
        return self.layers

    @property
    def inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def outputs(self) -> int:
        return int(self.layers.output_shape(self.input_shape)[0])

    def param_shapes(self) -> dict:
        return layers.param_shapes(self.layers, self.input_shape)

    def n_params(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.param_shapes().values())

    def describe(self) -> str:
        """e.g. ``784-dense64relu-residual-dense10``, ``28x28x1-conv32relu-maxpool2-dense10``."""
        parts = ["x".join(map(str, self.input_shape))]
        for layer in getattr(self.layers, "layers", (self.layers,)):
            if isinstance(layer, layers.Dense):
                parts.append(f"dense{layer.units}{layer.activation or ''}")
            elif isinstance(layer, conv_layers.Conv2D):
                parts.append(f"conv{layer.filters}{layer.activation or ''}")
            elif isinstance(layer, (conv_layers.MaxPool2D, conv_layers.AvgPool2D)):
                parts.append(f"{layer.kind[:-2]}{layer.size}")
            elif not (isinstance(layer, layers.Dropout) or isinstance(layer, layers.Flatten)):
                parts.append(layer.kind)
        return "-".join(parts)

    def to_json(self) -> dict:
        as_json = self.layers.to_json()
        return {
            "layers": as_json["layers"] if as_json["type"] == "Sequential" else [as_json],
            "input_shape": list(self.input_shape),
            "input_mean": self.input_mean,
            "input_std": self.input_std,
        }

    @classmethod
    def from_json(cls, data) -> "Network":
        """ValueError unless ``data`` is what to_json writes."""
        expected = {"layers", "input_shape", "input_mean", "input_std"}
        if not isinstance(data, dict) or set(data) != expected:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"an architecture has the fields {sorted(expected)}, got {got}")
        if not isinstance(data["input_shape"], list) or len(data["input_shape"]) > 4:
            raise ValueError(f"input_shape must be a list of at most 4 sizes, got {data['input_shape']!r}")
        if not isinstance(data["layers"], list):
            raise ValueError("the architecture's layers must be a list")
        return cls(
            layers.from_json(data["layers"]),
            tuple(data["input_shape"]),
            data["input_mean"],
            data["input_std"],
        )
