"""A factor regressor for data with known generative factors (dSprites): trained in `featurize` on the train
split, it reads position, scale and orientation off an image, so evaluation can check what a translation
preserved (CycleGAN's square -> heart should keep where the sprite is, how big and how turned).

Targets per image: pos_x / 31, pos_y / 31, scale / 5 (grid steps scaled to [0, 1]) and (cos 4t, sin 4t) of
the orientation t: a square looks the same after a quarter turn, so the orientation is only defined modulo
90 degrees across shapes, and errors are reported modulo 90 degrees. Errors are in grid steps (position
of 32, scale of 6) and degrees; the regressor's own error on real test images is reported as the floor.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from components.data import DatasetSpec, read_split, to_float
from components.data.shards import read_factors
from components.io import save_torch

FACTORS = ("pos_x", "pos_y", "scale", "orientation")
GRID = {"pos_x": 32, "pos_y": 32, "scale": 6, "orientation": 40}  # steps of the dSprites factor grid


class FactorNet(nn.Module):
    """Three stride-2 convs (BN, ReLU) and an MLP on the flattened map (B, C, H, W) -> (B, 5). No global pooling:
    position must survive to the head."""

    def __init__(self, channels: int, resolution: int, width: int = 16):
        super().__init__()
        layers, prev = [], channels
        for w in (width, width * 2, width * 4):
            layers += [nn.Conv2d(prev, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
            prev = w
        side = resolution // 8
        self.body = nn.Sequential(*layers, nn.Flatten())  # (B, 4w, R/8, R/8) -> (B, 4w R^2/64)
        self.head = nn.Sequential(nn.Linear(prev * side * side, 128), nn.ReLU(True), nn.Linear(128, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x * 2 - 1))


def available(spec: DatasetSpec) -> bool:
    return all(f in spec.factors for f in FACTORS)


def targets(factors: dict[str, np.ndarray]) -> torch.Tensor:
    """Factor indices -> regression targets (N, 5)."""
    t = 2 * math.pi * torch.from_numpy(factors["orientation"]).double() / GRID["orientation"]
    cols = [torch.from_numpy(factors[f]).double() / (GRID[f] - 1) for f in ("pos_x", "pos_y", "scale")]
    return torch.stack([*cols, torch.cos(4 * t), torch.sin(4 * t)], 1).float()


@torch.no_grad()
def predict(net: FactorNet, images, batch_size: int = 1000) -> dict[str, torch.Tensor]:
    """uint8 or [0, 1] images -> {pos_x, pos_y, scale: grid steps (float); orientation: degrees mod 90}."""
    net.eval()
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = to_float(chunk) if (isinstance(chunk, np.ndarray) or chunk.dtype == torch.uint8) else chunk.float()
        out.append(net(x))
    p = torch.cat(out)  # (N, 5)
    deg = torch.rad2deg(torch.atan2(p[:, 4], p[:, 3]) / 4) % 90  # (cos 4t, sin 4t) -> t mod 90 degrees
    return {"pos_x": p[:, 0] * (GRID["pos_x"] - 1), "pos_y": p[:, 1] * (GRID["pos_y"] - 1),
            "scale": p[:, 2] * (GRID["scale"] - 1), "orientation": deg}


def signed_errors(pred: dict[str, torch.Tensor], factors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Reading minus truth per image (N,): pos_x, pos_y, scale in grid steps; orientation_deg in degrees modulo
    90 (the square's symmetry, the coarsest reading the regressor is asked for), wrapped to [-45, 45)."""
    out = {f: pred[f] - torch.from_numpy(factors[f]).float() for f in ("pos_x", "pos_y", "scale")}
    true = (torch.from_numpy(factors["orientation"]).float() * 360 / GRID["orientation"]) % 90
    out["orientation_deg"] = (pred["orientation"] - true + 45) % 90 - 45
    return out


def errors(pred: dict[str, torch.Tensor], factors: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean absolute error per factor (factor_error_<f>): grid steps, orientation in degrees modulo 90."""
    return {f"factor_error_{f}": float(e.abs().mean()) for f, e in signed_errors(pred, factors).items()}


def train_factor_regressor(data_dir: Path, spec: DatasetSpec, epochs: int, batch_size: int = 128, seed: int = 0,
                           log=print) -> tuple[FactorNet, dict]:
    """Fit the regressor (MSE on the targets) on the train split; its errors on the test split."""
    torch.manual_seed(seed)
    x_train, _ = read_split(data_dir, spec, "train")
    y_train = targets(read_factors(data_dir, spec, "train"))
    net = FactorNet(spec.channels, spec.resolution)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps = epochs * (len(y_train) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=max(steps, 1))
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = rng.permutation(len(y_train))
        for start in range(0, len(perm) - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            loss = F.mse_loss(net(to_float(x_train[idx])), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log(f"[featurize] factor regressor epoch {epoch + 1}/{epochs}: mse {loss.item():.4f} "
            f"({time.perf_counter() - t0:.0f}s)")
    net.eval()
    x_test, _ = read_split(data_dir, spec, "test")
    floor = errors(predict(net, x_test), read_factors(data_dir, spec, "test"))
    return net, {f"regressor_test_{k.removeprefix('factor_')}": v for k, v in floor.items()}


def save_regressor(net: FactorNet | None, spec: DatasetSpec, path: Path) -> None:
    """Write the regressor atomically (or, without factors, a file that says so: DVC tracks it either way)."""
    blob = {"available": net is not None, "channels": spec.channels, "resolution": spec.resolution,
            "dataset_manifest_sha256": spec.manifest_sha256}
    if net is not None:
        blob["state_dict"] = net.state_dict()
    save_torch(path, blob)


def load_regressor(path: Path) -> FactorNet | None:
    """The regressor in eval mode, or None when the dataset has no factors (or the file is absent)."""
    if not Path(path).is_file():
        return None
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not blob["available"]:
        return None
    net = FactorNet(blob["channels"], blob["resolution"])
    net.load_state_dict(blob["state_dict"])
    return net.eval()
