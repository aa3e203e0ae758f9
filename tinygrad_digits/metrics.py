"""Classification metrics over integer labels: accuracy, confusion matrix, per-class accuracy.

Labels and predictions are 1-D integer arrays of equal length with values in [0, classes).
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    """(classes, classes) int64 counts: row = true label, column = prediction."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: {labels.shape} labels but {predictions.shape} predictions")
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """(classes,) float64: the diagonal over the row sums (nan for a class with no samples)."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(confusion) / totals


CHUNK = 4096  # images evaluated at a time


def evaluate(spec, params, images: np.ndarray, labels: np.ndarray) -> dict:
    """Loss, accuracy, per-digit accuracy and confusion matrix of a model on raw [0, 1] images.

    images (n, inputs), labels (n,). Returns plain Python types, ready for JSON.
    """
    from . import model as M
    from .data_cache import release_rows
    from .train import evaluate_loss_accuracy

    labels = np.asarray(labels, dtype=np.int64)
    dtype = np.result_type(*params.values()).type
    total, predictions = 0.0, np.empty(len(labels), dtype=np.int64)
    for start in range(0, len(labels), CHUNK):  # a chunk at a time: no normalized copy of the whole set
        x = M.normalize(spec, images[start : start + CHUNK], dtype)
        loss, _ = evaluate_loss_accuracy(spec, params, x, labels[start : start + CHUNK])
        total += loss * len(x)
        predictions[start : start + CHUNK] = np.argmax(M.predict_proba(spec, params, images[start : start + CHUNK]), 1)
        release_rows(images, start, start + CHUNK)  # a memory-mapped set: its pages may go
    loss = total / len(labels) if len(labels) else float("nan")
    accuracy = float(np.mean(predictions == labels)) if len(labels) else float("nan")
    confusion = confusion_matrix(labels, predictions, spec.outputs)
    return {
        "loss": float(loss),
        "accuracy": float(accuracy),
        "per_digit_accuracy": [float(a) for a in per_class_accuracy(confusion)],
        "confusion": confusion.tolist(),
    }


def most_confident_mistakes(labels: np.ndarray, probs: np.ndarray, count: int = 36) -> list[dict]:
    """The ``count`` wrong predictions made with the highest confidence, most confident first.

    labels (n,) integers, probs (n, classes) class probabilities. Returns plain dicts
    {index, label, predicted, confidence (the probability given to the wrong label)}.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs)
    if probs.ndim != 2 or labels.shape != (len(probs),):
        raise ValueError(
            f"most_confident_mistakes: expected labels (n,) and probs (n, k), got {labels.shape} and {probs.shape}"
        )
    predicted = np.argmax(probs, axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probs[wrong, predicted[wrong]]
    top = wrong[np.argsort(-confidence, kind="stable")][:count]
    return [
        {"index": int(i), "label": int(labels[i]), "predicted": int(predicted[i]),
         "confidence": float(probs[i, predicted[i]])}
        for i in top
    ]


def format_confusion(confusion) -> str:
    """A fixed-width text table of a confusion matrix (rows true, columns predicted)."""
    k = len(confusion)
    width = max(4, max(len(str(v)) for row in confusion for v in row) + 1)
    lines = ["confusion matrix (rows: true digit, columns: predicted)"]
    lines.append("     " + "".join(f"{j:>{width}}" for j in range(k)))
    for i, row in enumerate(confusion):
        lines.append(f"  {i}: " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
