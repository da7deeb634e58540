"""Figures: sample grids, latent interpolation strips, class-by-sample grids, reconstructions and VAE
latent traversals (InfoGAN's code traversal is the model's own `code_traversal`).

All take and return images in [0, 1] and are saved as PNG through torchvision's `make_grid`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

from components.io import atomic_write
from components.models.base import GenerativeModel


def save_grid(images: torch.Tensor, path: Path, nrow: int, scale: int = 3) -> Path:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid (upscaled `scale`x, nearest), atomically."""
    grid = make_grid(images.detach().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=0.5)  # (C, H', W')
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H', W', C)
    img = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return atomic_write(path, img.save)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent codes (White 2016, "Sampling Generative Networks"):
    stays in the typical set of a Gaussian prior where linear interpolation passes near the origin.
    a, b: (R, d); t: (S,) -> (R, S, d)."""
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((an * bn).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]  # (R, 1, 1)
    t = t[None, :, None]  # (1, S, 1)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]


@torch.no_grad()
def interpolation(model: GenerativeModel, rows: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """rows x steps images decoded along slerp paths between pairs of prior samples (a conditional model
    keeps one class per row: row r is class r mod K)."""
    a, b = model.latent(rows, generator), model.latent(rows, generator)
    z = slerp(a, b, torch.linspace(0, 1, steps, device=a.device))  # (R, S, d)
    labels = None
    if model.capabilities.labels:
        labels = (torch.arange(rows) % model.spec.num_classes).repeat_interleave(steps).to(a.device)  # (R*S,)
    return model.decode_latent(z.reshape(rows * steps, -1), labels)  # (R*S, d) -> (R*S, C, H, W)


@torch.no_grad()
def class_grid(model: GenerativeModel, num_classes: int, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """One row per class, `per_class` samples each, the same noise in every row (so a column shows what
    the label alone changes): the same latent z, or for a model without a latent space (a conditional
    PixelCNN) the same seed of its sampler's random draws."""
    if not model.capabilities.latent:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        return torch.cat([model.sample(per_class, torch.full((per_class,), k), torch.Generator().manual_seed(seed))
                          for k in range(num_classes)])  # K x (P, C, H, W) -> (K*P, C, H, W)
    z = model.latent(per_class, generator)  # (P, d)
    labels = torch.arange(num_classes).repeat_interleave(per_class).to(z.device)  # (K*P,)
    return model.decode_latent(z.repeat(num_classes, 1), labels)  # (K*P, d) -> (K*P, C, H, W)


@torch.no_grad()
def reconstructions(model, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Originals and their reconstructions (the model's `reconstruct`), interleaved by row."""
    return beside(x, model.reconstruct(x, labels))


@torch.no_grad()
def latent_traversal(model, x: torch.Tensor, dims: int, steps: int, labels: torch.Tensor | None = None,
                     span: float = 3.0) -> torch.Tensor:
    """The lecture's figure: from the posterior mean of one image, sweep each of the `dims` latent units
    with the largest average KL over `x` from -span to +span, one row per unit (a conditional model keeps
    that image's label)."""
    mu, logvar = model.encode(x, labels)
    kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(0)  # (d,)
    order = kl_per_dim.argsort(descending=True)[: min(dims, mu.shape[1])]
    base = mu[:1].repeat(len(order) * steps, 1)  # (rows*steps, d)
    values = torch.linspace(-span, span, steps, device=mu.device)
    for r, dim in enumerate(order):
        base[r * steps : (r + 1) * steps, dim] = values
    y = None if labels is None else labels[:1].repeat(len(base)).to(base.device)
    return model.decode_latent(base, y)


def beside(samples: torch.Tensor, neighbours: torch.Tensor, per_row: int = 8) -> torch.Tensor:
    """The lecture's memorization figure: rows of samples, each above a row of their nearest training
    images. samples in [0, 1], neighbours uint8 or [0, 1]; both (N, C, H, W) with N a multiple of per_row."""
    if neighbours.dtype == torch.uint8:
        neighbours = neighbours.float() / 255
    n = samples.shape[0] // per_row * per_row
    rows = torch.stack([samples[:n].reshape(-1, per_row, *samples.shape[1:]),
                        neighbours[:n].reshape(-1, per_row, *samples.shape[1:])], 1)
    return rows.reshape(-1, *samples.shape[1:])  # (blocks, 2, per_row, C, H, W) -> (blocks*2*per_row, C, H, W)
