"""How attnas words counts and durations in what it prints."""
from __future__ import annotations

import math


def plural(count: int, noun: str) -> str:
    """`1 trial`, `2 trials`: counts in messages agree in number."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def duration(seconds: float) -> str:
    """`45s`, `3m20s`, `2h05m`."""
    seconds = int(math.floor(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
