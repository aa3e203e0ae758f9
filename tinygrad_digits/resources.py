"""What the machine can give: memory available now, for refusing sizes before allocating them."""

from __future__ import annotations

import os


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable on Linux; else all physical
    memory, or 2**63 where neither can be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 63


def human(size: int) -> str:
    """e.g. 2.1 GB, 640 MB, 12 kB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
