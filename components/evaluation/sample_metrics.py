"""Sample metrics in a feature space, computed from features extracted once per image set.

- FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium"): ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), via torchmetrics.
- KID (Binkowski et al. 2018, "Demystifying MMD GANs"): unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over subsets, via torchmetrics.
- Improved precision and recall (Kynkaanniemi et al. 2019): a sample is "precise" if it falls inside
  the k-NN ball (k = 3) of some real feature; a real image is "recalled" if it falls inside the k-NN
  ball of some generated feature.
- Class coverage: the feature classifier's label histogram over samples against the data's.
- Memorization: nearest-training-neighbour distances of samples against those of held-out real images.
torchmetrics receives precomputed features through an identity "feature extractor".
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _Precomputed(nn.Module):
    """Identity feature extractor: lets torchmetrics' FID/KID consume features computed once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    # sync_on_compute=False: the features are all here; under torch.distributed (the train stage's per-epoch
    # quality check runs on rank 0 only) torchmetrics would otherwise wait at a barrier for the other ranks
    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]), reset_real_features=False,
                                      sync_on_compute=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of KID (Binkowski et al. 2018) over `subsets` random subsets of min(subset_size, n // 2)
    features: a subset of the whole set would be the same set every time, and the std exactly 0."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = max(2, min(subset_size, len(real) // 2, len(fake) // 2))
    metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=size,
                                     sync_on_compute=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    torch.manual_seed(seed)
    mean, std = metric.compute()
    return float(mean), float(std)


def _kth_nn_radius(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row: (N, d) -> (N,)."""
    radii = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start : start + chunk], x)  # (c, N)
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # index 0 is the point itself
    return torch.cat(radii)


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    inside = []
    for start in range(0, len(points), chunk):
        d = torch.cdist(points[start : start + chunk], centres)  # (c, M)
        inside.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds."""
    real, fake = real.float(), fake.float()
    precision = _inside_any_ball(fake, real, _kth_nn_radius(real, k)).float().mean()
    recall = _inside_any_ball(real, fake, _kth_nn_radius(fake, k)).float().mean()
    return float(precision), float(recall)


def class_coverage(fake_pred: torch.Tensor, data_labels: torch.Tensor, num_classes: int,
                   min_share: float = 0.25) -> dict:
    """Label histograms of samples (by the feature classifier) and data. A class counts as covered when
    its share of samples is at least `min_share` times its share of the data. KL(data || samples) uses
    add-1/2 (Jeffreys) smoothing of the sample counts, so a missing class costs a large but finite KL."""
    p = torch.bincount(data_labels, minlength=num_classes).double()
    p /= p.sum()
    counts = torch.bincount(fake_pred, minlength=num_classes).double()
    q = (counts + 0.5) / (counts.sum() + 0.5 * num_classes)
    share = counts / counts.sum()
    covered = int(((share >= min_share * p) & (p > 0)).sum())
    kl = float((p[p > 0] * (p[p > 0] / q[p > 0]).log()).sum())
    return {"classes_covered": covered, "classes_total": int((p > 0).sum()), "class_kl": kl,
            "sample_class_histogram": share.tolist(), "data_class_histogram": p.tolist()}


def nearest(points: torch.Tensor, refs: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each point's nearest reference."""
    dists, idxs = [], []
    for start in range(0, len(points), chunk):
        d, i = torch.cdist(points[start : start + chunk].float(), refs.float()).min(dim=1)
        dists.append(d)
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


def memorization(fake: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor, quantile: float = 0.05) -> dict:
    """How often samples sit closer to a training image than held-out real images do.

    tau = the `quantile` of held-out images' nearest-training-image distances; a sample with
    d(sample, nearest train) <= tau is as close to the training set as only the closest `quantile` of
    unseen real images are. A model that generalizes scores about `quantile`; one that copies its
    training images scores about 1.
    """
    d_fake, idx = nearest(fake, train)
    d_held, _ = nearest(heldout, train)
    tau = float(torch.quantile(d_held, quantile))
    return {
        "memorization_fraction": float((d_fake <= tau).float().mean()),
        "memorization_threshold": tau,
        "memorization_quantile": quantile,
        "nn_distance_ratio": float(d_fake.median() / d_held.median().clamp_min(1e-12)),
        "_nearest_index": idx,
    }


def all_metrics(real: torch.Tensor, fake: torch.Tensor, fake_pred: torch.Tensor, data_labels: torch.Tensor,
                train: torch.Tensor, num_classes: int, seed: int = 0, k: int = 3) -> dict:
    """Every sample metric from features: real (held-out), fake, train (for memorization)."""
    out = {"fid": fid(real, fake)}
    out["kid"], out["kid_std"] = kid(real, fake, seed=seed)
    out["precision"], out["recall"] = precision_recall(real, fake, k=k)
    out.update(class_coverage(fake_pred, data_labels, num_classes))
    out.update(memorization(fake, train, real))
    assert all(math.isfinite(v) for v in (out["fid"], out["kid"]))
    return out
