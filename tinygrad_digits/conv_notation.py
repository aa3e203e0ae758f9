"""The conv blocks of a spec as the CLI writes them, without loading NumPy or the kernels: a
block is its filters (one convolution) or a tuple of them (several convolutions, then the pool).
"""

from __future__ import annotations


def conv_blocks(conv) -> tuple[tuple[int, ...], ...]:
    """Each block's filters, one per convolution: (32, (64, 64)) -> ((32,), (64, 64))."""
    return tuple(tuple(block) if isinstance(block, (tuple, list)) else (block,) for block in conv)


def format_conv(conv) -> str:
    """The --conv notation of blocks: (32, (64, 64)) -> '32,64+64'."""
    return ",".join("+".join(map(str, block)) for block in conv_blocks(conv))
