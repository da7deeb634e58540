"""Likelihood metrics for models that have one: mean per-image bound in nats and in bits per dimension.

bits/dim = -log P(x) / (D ln 2) with D = C*H*W (Theis et al. 2016, "A note on the evaluation of
generative models"); for the dequantized Gaussian VAE, P is the probability of the 8-bit image.
"""

from __future__ import annotations

import math

import torch

from components.data.shards import to_float


@torch.no_grad()
def content_dims(spec) -> int:
    """The pixels that carry data: MNIST-like 28x28 images zero-padded to 32x32 (`sources._resize`) have 784
    per channel, not 1,024; bits/dim divides by these, as the literature does for MNIST."""
    padded = spec.name in ("mnist", "fashion_mnist") and spec.resolution == 32
    return spec.channels * (28 * 28 if padded else spec.resolution**2)


def test_bound(model, images, labels=None, batch_size: int = 500, n_samples: int = 1, seed: int = 0,
               dims: int | None = None) -> dict[str, float]:
    """Mean log-likelihood (or bound) over uint8 `images` (N, C, H, W): for a bound, the ELBO for n_samples=1,
    else IWAE-k; `labels` (N,) for a likelihood conditional on the class (log p(x | y)). bits/dim divides by
    `dims` (content_dims(spec); None: every pixel of the array)."""
    torch.manual_seed(seed)
    model.eval()
    total, n = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = to_float(images[start : start + batch_size]).to(model.device)
        y = None if labels is None else torch.as_tensor(labels[start : start + batch_size]).long().to(model.device)
        total += model.log_likelihood(x, y, n_samples=n_samples).sum().item()
        n += x.shape[0]
    dims = dims or math.prod(images.shape[1:])
    mean = total / n
    return {"nats": -mean, "bits_per_dim": -mean / (dims * math.log(2)), "n": n}
