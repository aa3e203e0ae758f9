"""What the fused kernels train, read from a model of layers: its *dense chain*, and where every
layer lies in the kernels' flat buffers.

A chain is a tuple of ``(weight key, bias key, activation name)``, one per dense layer, with one
leaky_relu ``alpha`` for all (``dense_chain``); ``flat_layout`` places it in flat arrays.
"""

from __future__ import annotations

import numpy as np

from . import layers
from .kernels.activations import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH

IDENTITY_NAME = "identity"  # a dense layer without activation
ACTIVATION_CODES = {IDENTITY_NAME: IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU, "sigmoid": SIGMOID,
                    "tanh": TANH}


def dense_chain(model):
    """``(chain, alpha)`` when the model is only dense layers (fastpath's fused kernels), else
    None. chain: ((weight key, bias key, activation), ...); an Activation right after a Dense
    without one is folded into it; dropout of rate 0 is skipped. alpha: the one leaky_relu alpha."""
    if not isinstance(model, layers.Sequential):
        return None
    chain, alphas = [], set()
    for name, layer in zip(model.names, model.layers):
        if isinstance(layer, layers.Dense):
            chain.append([f"{name}.W", f"{name}.b", layer.activation or IDENTITY_NAME])
            alphas.add(layer.alpha if layer.activation == "leaky_relu" else None)
        elif isinstance(layer, layers.Activation) and chain and chain[-1][2] == IDENTITY_NAME:
            chain[-1][2] = layer.name
            alphas.add(layer.alpha if layer.name == "leaky_relu" else None)
        elif not (isinstance(layer, layers.Dropout) and layer.rate == 0):
            return None
    alphas.discard(None)
    if not chain or len(alphas) > 1:
        return None
    return tuple(map(tuple, chain)), (alphas.pop() if alphas else 0.1)


def flat_layout(chain, params: dict, rows: int):
    """Where the fused kernels (kernels/fused.py) find every layer in flat buffers, for ``rows``
    inputs at a time: (layout (L, 6) int64, [(param key, offset, size)], params size, outputs
    size)."""
    layout, keys, size, out_size = [], [], 0, 0
    for w_key, b_key, act in chain:
        fan_in, fan_out = params[w_key].shape
        w_at, b_at = size, size + fan_in * fan_out
        size = b_at + fan_out
        layout.append((w_at, fan_in, fan_out, b_at, out_size, ACTIVATION_CODES[act]))
        out_size += rows * fan_out
        keys += [(w_key, w_at, fan_in * fan_out), (b_key, b_at, fan_out)]
    return np.array(layout, dtype=np.int64), keys, size, out_size
