"""When a training run has diverged though its loss stays finite, and which epoch was its best.

``gone_wrong(record, history, classes)`` reads an epoch's record against the ones before it;
``Best`` follows the best epoch so far, whose params a diverged run keeps.
"""

from __future__ import annotations

import math

CLIMB = 3.0  # a training loss this many times the first epoch's has diverged
CHANCE = 1.2  # validation accuracy within this factor of chance (1 / classes) has learned nothing
FAR_WORSE = 10.0  # ... if it was above chance before, or its loss is this many times a uniform guess's


def gone_wrong(record: dict, history: list, classes: int | None) -> str | None:
    """Why an epoch that stayed finite has diverged all the same, or None: its training loss
    climbed far above the first epoch's, or its validation accuracy (cross-entropy with
    ``classes`` classes) is at chance where it was above it before, or is at chance with a loss
    far worse than a uniform guess's (log classes)."""
    if history and record["train_loss"] > CLIMB * max(history[0]["train_loss"], 1e-12):
        return (f"the training loss climbed to {record['train_loss']:.4g} at epoch {record['epoch']}, "
                f"from {history[0]['train_loss']:.4g} in the first")
    chance = CHANCE / classes if classes else None
    if chance is not None and record["val_accuracy"] <= chance:
        learned = any(r["val_accuracy"] > 2 * chance for r in history)
        if learned or record["val_loss"] >= FAR_WORSE * math.log(classes):
            return (f"validation accuracy fell to chance ({record['val_accuracy']:.2%}, loss "
                    f"{record['val_loss']:.4g}) at epoch {record['epoch']}")
    return None


class Best:
    """The best epoch so far: by validation accuracy where there is one, else by training loss."""

    def __init__(self):
        self.epoch, self.score = 0, -math.inf

    def improved_by(self, record: dict) -> bool:
        accuracy = record["val_accuracy"]
        score = accuracy if math.isfinite(accuracy) else -record["train_loss"]
        if score >= self.score:
            self.epoch, self.score = record["epoch"], score
            return True
        return False
