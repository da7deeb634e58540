"""Metrics of a translation model (CycleGAN) on the test split, per direction (a2b: A's test images through
G, b2a: B's through F) and as the mean of both:
  translation_fid          FID (Heusel et al. 2017, in the featurize feature space) of the translations against
                           the target domain's real test images
  translation_target_rate  share of translations the featurize classifier puts in the target class (domains
                           made of classes only)
  factor_error_<f>         the factor regressor's reading of the translation against the source's true factors
                           (dSprites, no transform): what the translation preserved; regressor_floor_<f> is the
                           regressor's own error on real images
  factor_shift_<f>         per direction: the mean signed error, an offset shared by every translation (say,
                           each heart drawn a pixel above where the square was); cycle consistency cannot see
                           one that the other generator undoes, nor the discriminator a shifted real shape
  factor_spread_<f>        the mean absolute error left once that offset is removed
  cycle_l1                 mean |F(G(a)) - a| (and |G(F(b)) - b|) per pixel
"""

from __future__ import annotations

import numpy as np
import torch

from components.data import to_float
from components.evaluation import factors as factor_lib
from components.evaluation.features import embed
from components.evaluation.sample_metrics import fid


@torch.no_grad()
def _translate(model, x: torch.Tensor, direction: str, batch_size: int = 250) -> torch.Tensor:
    return torch.cat([model.translate(x[s : s + batch_size].to(model.device), direction).cpu()
                      for s in range(0, len(x), batch_size)]) if len(x) else x


def shift_and_spread(pred: dict[str, torch.Tensor], factors: dict[str, np.ndarray]) -> dict[str, float]:
    """The factor errors split in two: factor_shift_<f>, the mean of reading minus truth (grid steps; degrees
    modulo 90, wrapped to [-45, 45)), and factor_spread_<f>, the mean absolute error about that mean."""
    signed = factor_lib.signed_errors(pred, factors)
    out = {}
    for f, e in signed.items():
        out[f"factor_shift_{f}"] = float(e.mean())
        out[f"factor_spread_{f}"] = float((e - e.mean()).abs().mean())
    return out


@torch.no_grad()
def translation_metrics(model, images: np.ndarray, labels: np.ndarray, test_factors: dict[str, np.ndarray],
                        feature_net, regressor) -> tuple[dict, torch.Tensor]:
    """(metrics, figure grid: per direction 8 sources, their translations and the cycle back, rows of 8)."""
    model.eval()
    dom = model.domains(to_float(images), torch.from_numpy(labels).long())
    classes = {"a": model.class_a, "b": model.class_b}
    use_factors = regressor is not None and test_factors and model.config.transform_b == "none"
    per, grid = {}, []
    for direction, src, tgt in (("a2b", "a", "b"), ("b2a", "b", "a")):
        x, idx = dom[src]
        out = _translate(model, x, direction)
        back = _translate(model, out, "b2a" if direction == "a2b" else "a2b")
        m = {"cycle_l1": float((back - x).abs().mean()) if len(x) else None}
        f_out, pred = embed(feature_net, out)
        f_tgt, _ = embed(feature_net, dom[tgt][0])
        m["translation_fid"] = fid(f_tgt, f_out) if min(len(out), len(dom[tgt][0])) > 1 else None
        if classes[tgt] is not None and classes[src] != classes[tgt]:
            m["translation_target_rate"] = float((pred == classes[tgt]).float().mean())
        if use_factors:
            src_factors = {k: v[idx.numpy()] for k, v in test_factors.items()}
            reading = factor_lib.predict(regressor, out)
            m.update(factor_lib.errors(reading, src_factors) | shift_and_spread(reading, src_factors))
        per[direction] = m
        grid += [x[:8], out[:8], back[:8]]
    metrics: dict = {"translation": {d: {k: v for k, v in m.items()} for d, m in per.items()},
                     "translation_images": {"a": len(dom["a"][0]), "b": len(dom["b"][0])}}
    for key in (k for k in per["a2b"] if not k.startswith("factor_shift_")):  # opposite shifts would cancel
        values = [per[d].get(key) for d in per]
        metrics[key] = None if None in values else float(np.mean(values))
    if use_factors:
        real = factor_lib.errors(factor_lib.predict(regressor, images), test_factors)
        metrics.update({k.replace("factor_error_", "regressor_floor_"): v for k, v in real.items()})
    return metrics, torch.cat(grid)
