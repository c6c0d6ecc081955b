"""Canonical GPU names, and the many spellings people and price files use for them.

Every offer stores the canonical name, so ``--gpu a100``, ``nvidia-tesla-a100`` and ``A100`` all
find the same rows. Plain "A100" means the 40 GB part, as in GCP's and SkyPilot's naming; the 80 GB
part is always spelled with its memory. An unknown name fails with the close canonical names.
"""

from __future__ import annotations

import difflib
import re

from strato.errors import InvalidArgument

# Canonical name -> memory per GPU in GiB (the nominal figure vendors sell it by).
GPU_MEMORY_GIB: dict[str, float] = {
    "T4": 16,
    "L4": 24,
    "A10G": 24,
    "A10": 24,
    "A100-40GB": 40,
    "A100-80GB": 80,
    "H100": 80,
    "H200": 141,
    "B200": 180,
    "L40S": 48,
    "V100": 16,
    "V100-32GB": 32,
    "P100": 16,
    "P4": 8,
    "K80": 12,
    "M60": 8,
    "MI25": 16,
    "MI300X": 192,
}

# The GPU types the shipped catalog must cover (the list).
REQUIRED_GPUS = ("T4", "L4", "A10G", "A10", "A100-40GB", "A100-80GB", "H100")

# Extra spellings, already normalized (see _normalize). Canonical names need no entry.
_ALIASES: dict[str, str] = {
    "a100": "A100-40GB",
    "a100-40": "A100-40GB",
    "a100-sxm4-40gb": "A100-40GB",
    "a100-80": "A100-80GB",
    "a100-sxm4-80gb": "A100-80GB",
    "h100-80gb": "H100",
    "h100-sxm": "H100",
    "h100-mega": "H100",  # GCP a3-megagpu: the same H100 with more network bandwidth
    "h100-mega-80gb": "H100",
    "h100-nvl": "H100",
    "h200-141gb": "H200",
    "v100-16gb": "V100",
    "t4-16gb": "T4",
    "l4-24gb": "L4",
    "a10g-24gb": "A10G",
}


def _normalize(name: str) -> str:
    s = re.sub(r"[\s_]+", "-", name.strip().lower())
    s = re.sub(r"^(nvidia-)?(tesla-)?", "", s)
    return re.sub(r"(\d+)g$", r"\1gb", s)  # "A100-80G" -> "a100-80gb"


_LOOKUP: dict[str, str] = {_normalize(canonical): canonical for canonical in GPU_MEMORY_GIB} | _ALIASES


def canonical_gpu(name: str) -> str | None:
    """The canonical name for ``name``, or None when it is not a GPU Strato knows."""
    return _LOOKUP.get(_normalize(name))


def resolve_gpu(name: str) -> str:
    """The canonical name for ``name``; an unknown name raises InvalidArgument with the close ones."""
    found = canonical_gpu(name)
    if found is not None:
        return found
    close = difflib.get_close_matches(_normalize(name), list(_LOOKUP), n=5, cutoff=0.5)
    guesses = list(dict.fromkeys(_LOOKUP[key] for key in close))
    hint = f"; did you mean {' or '.join(repr(g) for g in guesses)}?" if guesses else ""
    raise InvalidArgument(f"unknown GPU type {name!r}{hint} (known: {', '.join(GPU_MEMORY_GIB)})")
