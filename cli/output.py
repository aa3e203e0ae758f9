"""What the commands print: human-readable lines, JSON on stdout, download and epoch progress.

With ``--json`` stdout carries exactly one JSON object, so every human-readable line goes to
stderr instead. Nothing heavy is imported here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click


def echo(message: str, as_json: bool) -> None:
    """Human-readable lines go to stdout, or to stderr when stdout carries JSON."""
    click.echo(message, err=as_json)


def emit_json(obj: dict) -> None:
    """The command's one JSON object on stdout: strict JSON (RFC 8259), NumPy values as plain
    numbers and lists, NaN and infinity as null."""
    from tinygrad_digits.schema import strict

    click.echo(json.dumps(strict(obj), indent=2, allow_nan=False))


def download_progress() -> Callable[[str, int, int | None], None]:
    """A ``progress(name, done, total)`` callback for ``data.download``: one stderr line per file,
    ``downloading <name> (<size> MB)``, when its first bytes arrive."""
    shown: set[str] = set()

    def progress(name: str, done: int, total: int | None) -> None:
        if name not in shown:
            shown.add(name)
            click.echo(f"downloading {name}" + (f" ({total / 1e6:.1f} MB)" if total else ""), err=True)

    return progress


class EpochProgress:
    """A progress bar within each epoch on a terminal, and one plain line per epoch always."""

    def __init__(self, as_json: bool, epochs: int):
        self.as_json = as_json
        self.epochs = epochs
        self.bar = None
        self.current = 1
        self.interactive = sys.stderr.isatty()

    def batch(self, step: int, steps: int) -> None:
        if not self.interactive:
            return
        if self.bar is None:
            label = f"epoch {self.current}/{self.epochs}"
            self.bar = click.progressbar(length=steps, file=sys.stderr, label=label, width=30)
            self.bar.__enter__()
        self.bar.update(1)

    def epoch(self, record: dict, params) -> None:
        self.close()
        self.current = record["epoch"] + 1
        validation = (
            f"val loss {record['val_loss']:.4f} acc {100 * record['val_accuracy']:.2f}%"
            if record["val_loss"] == record["val_loss"] else "no validation set"  # nan: none (--all-data)
        )
        line = (
            f"epoch {record['epoch']:>{len(str(self.epochs))}}/{self.epochs}  "
            f"train loss {record['train_loss']:.4f} acc {100 * record['train_accuracy']:.2f}%  "
            f"{validation}  {record['seconds']:.2f} s"
        )
        if record.get("extra_accuracy") is not None:  # the extra images held out (digits train --extra-images)
            line += f"  held-out extra images acc {100 * record['extra_accuracy']:.2f}%"
        click.echo(line, err=self.as_json)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
