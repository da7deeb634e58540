"""Codebook usage of a discrete-latent model (VQ-VAE, van den Oord et al. 2017) over the test split: the
perplexity exp(H(p)) of the code histogram (K when all K codes are used equally, 1 when one code does
everything) and the number of dead codes (never assigned), the usual diagnostics of codebook collapse."""

from __future__ import annotations

import math

import torch

from components.data.shards import to_float


@torch.no_grad()
def codebook_metrics(model, images, batch_size: int = 500) -> dict[str, float | int]:
    """images: uint8 (N, C, H, W) -> {codebook_perplexity, codebook_dead_codes, codebook_size}."""
    k = model.codebook_size
    counts = torch.zeros(k, dtype=torch.float64)
    for start in range(0, len(images), batch_size):
        codes = model.encode_codes(to_float(images[start : start + batch_size]).to(model.device))  # (B, h, w)
        counts += torch.bincount(codes.flatten().cpu(), minlength=k).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {"codebook_perplexity": math.exp(entropy), "codebook_dead_codes": int((counts == 0).sum()),
            "codebook_size": k}
