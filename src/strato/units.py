"""Parsing of the quantities users write in specs and flags: memory sizes and durations."""

from __future__ import annotations

import re

_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_memory(value: str | int | float) -> int:
    """``"2Gi"`` -> 2147483648 bytes; plain numbers are bytes. Raises ``ValueError`` with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("memory must be a size such as 512Mi or 2Gi, not a boolean")
    if isinstance(value, int | float):
        return int(value)
    match = _MEMORY_RE.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _MEMORY_UNITS:
        raise ValueError(f"memory {value!r} is not a size; write it like 512Mi, 2Gi, 1.5G or a number of bytes")
    return int(float(match.group(1)) * _MEMORY_UNITS[unit])


def parse_duration(value: str | int | float) -> float:
    """``"1h30m"`` -> 5400.0 seconds; plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be like 90s, 30m or 1h30m, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    text = value.strip().lower().replace(" ", "")
    try:
        return float(text)
    except ValueError:
        pass
    total, consumed = 0.0, 0
    for match in _DURATION_RE.finditer(text):
        if match.start() != consumed:
            break
        total += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
        consumed = match.end()
    if consumed != len(text) or not text:
        raise ValueError(f"duration {value!r} is not understood; write it like 90s, 30m, 1h30m or 2d")
    return total


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n}B"
