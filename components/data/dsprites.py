"""Procedural dSprites (Matthey et al. 2017, https://github.com/deepmind/dsprites-dataset).

The original is 737,280 binary 64x64 images: every combination of five generative factors
(shape 3 x scale 6 x orientation 40 x pos_x 32 x pos_y 32). This re-implementation keeps the same
factor grid and draws images from it with a seeded RNG, rendering each sprite analytically at any
resolution (3x3 supersampling, then thresholded so pixels stay binary as in the original).
"""

from __future__ import annotations

import numpy as np

from components.errors import ConfigError

SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40, endpoint=False)
POSITIONS = np.linspace(0.0, 1.0, 32)
FACTOR_SIZES = {"shape": 3, "scale": 6, "orientation": 40, "pos_x": 32, "pos_y": 32}
_SUPERSAMPLE = 3
_MAX_HALF_SIZE = 0.3  # half-size of a scale-1 sprite as a fraction of the image side


GRID_SIZE = int(np.prod(list(FACTOR_SIZES.values())))  # 737,280 factor combinations
PLACEMENTS = GRID_SIZE // FACTOR_SIZES["shape"]  # 245,760 (scale, orientation, pos_x, pos_y) combinations


def sample_factors(n: int, rng: np.random.Generator, orientation_steps: int = 40) -> dict[str, np.ndarray]:
    """Indices into the factor grid for n images: n distinct placements (scale, orientation, pos_x, pos_y)
    drawn uniformly without replacement, each with a shape drawn uniformly. So no two images (in any
    split) share a grid cell, and no placement appears with two shapes: domains made of shapes (CycleGAN's
    square -> heart) never contain a matching pair. Orientations are the grid's first `orientation_steps`
    (of 40 steps of 9 degrees: 40 is the full turn, 1 upright sprites only). int64 arrays of length n."""
    if not 1 <= orientation_steps <= FACTOR_SIZES["orientation"]:
        raise ConfigError(f"data.orientation_steps: {orientation_steps}; allowed: 1 to {FACTOR_SIZES['orientation']}")
    sizes = {**FACTOR_SIZES, "orientation": orientation_steps}
    placements = PLACEMENTS // FACTOR_SIZES["orientation"] * orientation_steps
    if n > placements:
        raise ConfigError(f"data.n_train + data.n_val + data.n_test = {n}: at most {placements} with data.orientation_steps "
                          f"{orientation_steps} (each placement of the dSprites factor grid is drawn once)")
    cells = rng.choice(placements, size=n, replace=False)
    placement = [k for k in sizes if k != "shape"]
    idx = np.unravel_index(cells, tuple(sizes[k] for k in placement))
    factors = {"shape": rng.integers(0, FACTOR_SIZES["shape"], size=n)}
    factors.update(zip(placement, idx, strict=True))
    return {name: factors[name].astype(np.int64) for name in FACTOR_SIZES}


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership in the unit sprite, coordinates in the sprite's frame (|u|, |v| <= 1 is its box)."""
    if shape == 0:  # square
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if shape == 1:  # ellipse, elongated along u as in dSprites
        return (u / 1.0) ** 2 + (v / 0.5) ** 2 <= 1.0
    # heart: the implicit curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled into the box, point up
    x, y = u * 1.15, -v * 1.15 + 0.15
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def render(factors: dict[str, np.ndarray], resolution: int, chunk: int = 512) -> np.ndarray:
    """Render sprites for factor indices; returns uint8 images (N, 1, R, R) with values 0 or 255."""
    n = len(factors["shape"])
    out = np.empty((n, 1, resolution, resolution), dtype=np.uint8)
    side = resolution * _SUPERSAMPLE
    grid = ((np.arange(side) + 0.5) / side).astype(np.float32)  # sub-pixel centres in [0, 1]
    gy, gx = np.meshgrid(grid, grid, indexing="ij")  # (S, S)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        scale = SCALES.astype(np.float32)[factors["scale"][sl]][:, None, None]  # (b, 1, 1)
        theta = ORIENTATIONS.astype(np.float32)[factors["orientation"][sl]][:, None, None]
        half = _MAX_HALF_SIZE * scale
        margin = _MAX_HALF_SIZE * 1.05  # the largest sprite stays inside the frame at any angle
        cx = margin + POSITIONS.astype(np.float32)[factors["pos_x"][sl]][:, None, None] * (1 - 2 * margin)
        cy = margin + POSITIONS.astype(np.float32)[factors["pos_y"][sl]][:, None, None] * (1 - 2 * margin)
        dx, dy = gx[None] - cx, gy[None] - cy  # (b, S, S)
        cos, sin = np.cos(theta), np.sin(theta)
        u = (cos * dx + sin * dy) / half  # rotate by -theta into the sprite frame
        v = (-sin * dx + cos * dy) / half
        mask = np.zeros(u.shape, dtype=bool)
        shapes = factors["shape"][sl]
        for s in range(len(SHAPES)):
            idx = np.nonzero(shapes == s)[0]
            if len(idx):
                mask[idx] = _inside(s, u[idx], v[idx])
        b = mask.shape[0]
        # (b, S, S) -> (b, R, k, R, k) -> coverage per output pixel
        cover = mask.reshape(b, resolution, _SUPERSAMPLE, resolution, _SUPERSAMPLE).mean(axis=(2, 4))
        out[sl, 0] = np.where(cover >= 0.5, 255, 0).astype(np.uint8)
    return out


def generate(n: int, resolution: int, seed: int, orientation_steps: int = 40) -> tuple[np.ndarray, np.ndarray,
                                                                                    dict[str, np.ndarray]]:
    """n images, their shape labels and all factor indices; deterministic for (n, resolution, seed, orientation_steps)."""
    rng = np.random.default_rng(seed)
    factors = sample_factors(n, rng, orientation_steps)
    return render(factors, resolution), factors["shape"].copy(), factors
