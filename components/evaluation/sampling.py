"""Seeded sampling for metrics and validation (a module of its own so tune stages depend on it alone)."""

from __future__ import annotations

import torch


@torch.no_grad()
def generate(model, n: int, seed: int, labels: torch.Tensor | None = None, batch_size: int = 500) -> torch.Tensor:
    """n samples with a seeded generator; `labels` (n,) for conditional models (None: unconditional, or
    classes drawn uniformly by a conditional model)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, n, batch_size):
        y = None if labels is None else labels[s : s + batch_size]
        out.append(model.sample(min(batch_size, n - s), labels=y, generator=gen).cpu())
    return torch.cat(out)
