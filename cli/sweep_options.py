"""The values ``digits sweep`` reads: configurations (``--hidden``, ``--conv``), names and seeds."""

from __future__ import annotations

import click

from tinygrad_digits.conv_notation import format_conv

from . import options as opt


def parse_configurations(values, hint: str = "--hidden") -> list[tuple[int, ...]]:
    """``--hidden 64,128 --hidden 128x64`` -> [(64,), (128,), (128, 64)]: commas separate
    configurations, ``x`` separates the layers of one, ``none`` is no layer at all; repeats are
    dropped. ``--conv`` reads the same way (``--conv none,32x64``: filters per block)."""
    configs: list[tuple[int, ...]] = []
    for value in values:
        for item in str(value).split(","):
            item = item.strip()
            if not item:
                continue
            try:
                parts = item.split("x")
                sizes = () if item.lower() == opt.NONE else tuple(_layer(part, hint) for part in parts)
            except ValueError:
                example = "32x64 or 32x64+64" if hint == "--conv" else "128 or 128x64"
                raise click.BadParameter(
                    f"expected sizes like {example} (or none), got {item!r}", param_hint=hint
                ) from None
            if any(size <= 0 for size in _flat(sizes)):
                raise click.BadParameter(f"sizes must be positive, got {item!r}", param_hint=hint)
            if hint == "--conv":
                opt.parse_conv([format_conv(sizes)] if sizes else [])  # the blocks must fit
            if sizes not in configs:
                configs.append(sizes)
    if not configs:
        raise click.BadParameter("give at least one configuration", param_hint=hint)
    return configs


def _layer(part: str, hint: str):
    """A layer's size, or for --conv a block's filters: 64, or 64+64 (two convolutions)."""
    if hint != "--conv" or "+" not in part:
        return int(part)
    return tuple(int(f) for f in part.split("+"))


def _flat(sizes) -> list[int]:
    return [f for size in sizes for f in (size if isinstance(size, tuple) else (size,))]


def parse_names(values, choices, hint: str) -> list[str]:
    """Comma lists of names, each one of ``choices``; repeats dropped, order kept."""
    names: list[str] = []
    for value in values:
        for name in str(value).split(","):
            name = name.strip()
            if not name:
                continue
            if name not in choices:
                raise click.BadParameter(
                    f"unknown value {name!r}: expected one of {', '.join(choices)}", param_hint=hint
                )
            if name not in names:
                names.append(name)
    if not names:
        raise click.BadParameter("give at least one value", param_hint=hint)
    return names


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            seed = int(part)
        except ValueError:
            raise click.BadParameter(
                f"expected integers like 0,1,2, got {part!r}", param_hint="--seeds"
            ) from None
        if not 0 <= seed <= opt.MAX_SEED:
            raise click.BadParameter(
                f"seeds must be integers in [0, {opt.MAX_SEED}], got {seed}", param_hint="--seeds"
            )
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise click.BadParameter("give at least one seed", param_hint="--seeds")
    return seeds
