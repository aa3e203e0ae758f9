"""Inference: class probabilities of raw [0, 1] images (n, inputs) for any model
(``predict_proba``, ``predict``), and ``Predictor``, one kernel call from image to
probabilities for an MLP. ``model`` re-exports all three.
"""

from __future__ import annotations

import numpy as np

from .kernels import softmax as _softmax
from .model import check_params, dense_chain, normalize


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
        out[start : start + batch_size] = _softmax.softmax(np.ascontiguousarray(network.apply(params, x)))
    return out[0] if single else out


class Predictor:
    """predict_proba for one fixed model and a few images at a time (a drawing, a few files).

    The params are flattened once, and a call is one kernel from raw image to probabilities
    (kernels/fused.predict_rows: the first layer skips the images' blank pixels, and no product
    goes through BLAS) instead of one call per op and array: 10 us instead of 30 for an image. The
    probabilities are predict_proba's to float32 rounding. More than ``rows`` images at a time go
    to predict_proba. A convnet's go through its kernels one after another (conv_inference), with
    predict_proba's outputs to the bit. The params must not change while the predictor
    is in use.
    """

    def __init__(self, spec, params: dict, rows: int = 16):
        from .chain import aligned_empty, aligned_zeros
        from .fastpath import flat_layout
        from .kernels import sparse

        check_params(spec, params)
        self.spec, self.params, self.rows = spec, params, rows
        self.alpha = float(spec.alpha)
        chain = dense_chain(spec)
        self.layout = None
        if chain is None:  # a convnet: kernel after kernel (conv_inference), else its layers op by op
            from .conv_inference import ConvnetForward

            self.network, self.dtype = spec.network(), np.result_type(*params.values()).type
            self.convnet = ConvnetForward.of(self.network, params, spec.input_shape, rows)
            return
        self.layout, keys, size, out_size = flat_layout(chain, params, rows)
        self.dtype = params["dense0.W"].dtype.type
        self.flat = aligned_zeros(size, self.dtype)
        for key, at, count in keys:
            self.flat[at : at + count] = params[key].reshape(-1)
        self.outs = aligned_empty(out_size, self.dtype)
        self.background = normalize(spec, np.zeros((1, spec.inputs)), self.dtype)[0, 0]
        self.mean, self.std = self.dtype(spec.input_mean), self.dtype(spec.input_std)
        self.xbuf = aligned_empty((rows, spec.inputs), self.dtype)
        self.w_sums = np.empty(params["dense0.W"].shape[1], dtype=self.dtype)
        sparse.column_sums(params["dense0.W"], self.w_sums)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (n, outputs) of raw [0, 1] images (n, inputs), or (outputs,) for one."""
        from .kernels import fused

        images = np.asarray(images)
        if images.ndim not in (1, 2) or images.shape[-1] != self.spec.inputs or (
                images.ndim == 2 and len(images) > self.rows):
            return predict_proba(self.spec, self.params, images)
        if self.layout is None:
            x = normalize(self.spec, images.reshape(-1, self.spec.inputs), self.dtype)
            logits = self.network.apply(self.params, x) if self.convnet is None else self.convnet(x)
            probs = _softmax.softmax(np.ascontiguousarray(logits))
            return probs[0] if images.ndim == 1 else probs
        x = np.ascontiguousarray(images.reshape(-1, self.spec.inputs), dtype=self.dtype)
        probs = fused.predict_rows(self.flat, self.layout, self.alpha, x, self.mean, self.std, self.background,
                                   self.w_sums, self.xbuf, self.outs)
        return probs[0] if images.ndim == 1 else probs


def predict(spec, params: dict, images: np.ndarray) -> np.ndarray:
    """Predicted labels (n,) int64 for raw [0, 1] images (n, inputs)."""
    return np.argmax(predict_proba(spec, params, images), axis=-1)
