"""Seeded sampling for metrics and validation (a module of its own so tune stages depend on it alone)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


@torch.no_grad()
def generate(model, n: int, seed: int, labels: torch.Tensor | None = None, batch_size: int = 500,
             progress: Callable[[str], None] | None = None) -> torch.Tensor:
    """n samples with a seeded generator; `labels` (n,) for conditional models (None: unconditional, or
    classes drawn uniformly by a conditional model). `progress` gets a line after each batch that took
    over 5 s (a sampler with a pass per pixel takes minutes for 2,000 images)."""
    gen = torch.Generator().manual_seed(seed)
    out, start = [], time.monotonic()
    for s in range(0, n, batch_size):
        y = None if labels is None else labels[s : s + batch_size]
        t = time.monotonic()
        out.append(model.sample(min(batch_size, n - s), labels=y, generator=gen).cpu())
        if progress is not None and time.monotonic() - t > 5:
            done = s + len(out[-1])
            progress(f"sampled {done}/{n} images in {time.monotonic() - start:.0f} s")
    return torch.cat(out)
