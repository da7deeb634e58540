"""Metrics for what conditional and code-based models claim, beyond the unconditional sample metrics.

- Conditional accuracy (as in Odena et al. 2017's "AC-GAN" Inception accuracy, here with the featurize
  classifier): generate n/K images for each requested class k and count how often the classifier
  predicts k. A model that ignores its label scores about 1/K.
- Per-class KID (Binkowski et al. 2018, in the featurize feature space): the images generated for class k
  against the test images of class k; the mean over classes is reported with each class's value (KID, not
  FID: it is unbiased at the n/K images a class has).
- InfoGAN code metrics (Chen et al. 2016 assess codes by eye; we measure them on data with known factors):
  Q's categorical prediction on test images against the class label, as accuracy after the best
  one-to-one code-to-class matching (Hungarian algorithm); and for each continuous code the absolute Pearson
  correlation of Q's mean with every ground-truth factor (dSprites: scale, orientation, pos_x, pos_y), with
  the best-matching factor; orientation is circular and enters as a phase (`circular_corr`).
  The generator's side of a continuous code (`code_sample_factor_corr`): the |r| of each code's value with the
  factors of G's samples as the featurize factor regressor reads them. Both beside their chance level, the same
  figures for freshly initialised copies of the model (`untrained_code_floor`): position is the largest
  pixel-level variation in dSprites, so even an untrained Q's outputs track it.
"""

from __future__ import annotations

import numpy as np
import torch

from components.evaluation.features import embed


@torch.no_grad()
def per_class_samples(model, num_classes: int, per_class: int, seed: int, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (K * per_class, C, H, W), requested labels) generated class by class with a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for k in range(num_classes):
        for s in range(0, per_class, batch_size):
            m = min(batch_size, per_class - s)
            y = torch.full((m,), k, dtype=torch.long)
            images.append(model.sample(m, labels=y, generator=gen).cpu())
            labels.append(y)
    return torch.cat(images), torch.cat(labels)


def conditional_metrics(model, net, real_features: torch.Tensor, real_labels: torch.Tensor, num_classes: int,
                        per_class: int, seed: int) -> dict:
    """{cond_accuracy, kid_per_class_mean, kid_per_class: {class index: KID}} of a label-conditional model.
    Per class there are only n/K samples: KID (Binkowski et al. 2018) is unbiased in N, so a class's value
    compares with the overall KID; FID with 128-d features at 20-600 images per class would not (its bias
    grows as 1/N)."""
    from components.evaluation.sample_metrics import kid

    fake, requested = per_class_samples(model, num_classes, per_class, seed)
    f_fake, pred = embed(net, fake)
    out = {"cond_accuracy": float((pred == requested).float().mean()), "kid_per_class": {}}
    for k in range(num_classes):
        real_k = real_features[real_labels == k]
        if len(real_k) >= 4 and per_class >= 4:
            out["kid_per_class"][str(k)] = kid(real_k, f_fake[requested == k], seed=seed)[0]
    values = list(out["kid_per_class"].values())
    out["kid_per_class_mean"] = float(np.mean(values)) if values else None
    out["cond_samples_per_class"] = per_class
    return out


def matched_accuracy(codes: np.ndarray, labels: np.ndarray, k_codes: int, k_classes: int) -> tuple[float, list[int]]:
    """Accuracy of predicted codes against labels after the best one-to-one code -> class matching (the
    Hungarian algorithm, Kuhn 1955, via scipy's linear_sum_assignment, for any number of codes and classes;
    with more codes than classes the unmatched codes count as wrong) and the mapping (-1: unmatched)."""
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((k_codes, k_classes), dtype=np.int64)
    np.add.at(counts, (codes, labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = [-1] * k_codes
    for r, c in zip(rows, cols, strict=True):
        mapping[int(r)] = int(c)
    correct = int(counts[rows, cols].sum())
    return float(correct / max(len(labels), 1)), mapping


# Symmetry period of each dSprites shape (square 90 degrees, ellipse 180, heart 360) in orientation steps of 40
PERIOD_STEPS = {0: 10, 1: 20, 2: 40}


def circular_corr(code: np.ndarray, orientation: np.ndarray, shape: np.ndarray | None, steps: int = 40) -> float:
    """|Pearson r| of a continuous code with the orientation read as a phase: the angle modulo each shape's
    symmetry period (a square turned by 90 degrees is the same image), scaled to [0, 1), with the wrap point
    chosen to maximise |r| (a code that grows with the angle and wraps once per period scores 1)."""
    period = np.array([PERIOD_STEPS.get(int(s), steps) for s in shape]) if shape is not None else np.full(len(code), steps)
    phase = (orientation % period) / period
    if code.std() == 0:
        return 0.0
    return float(max(abs(np.corrcoef(code, (phase - shift) % 1.0)[0, 1]) for shift in np.linspace(0, 1, 36, endpoint=False)))


@torch.no_grad()
def code_sample_accuracy(model, net, n: int, num_classes: int, seed: int, batch_size: int = 500) -> float:
    """The generator's side of InfoGAN's categorical code: n samples, the code's K values in turn, put in a
    class by the feature classifier; the share that lands in the class matched to its code (best one-to-one
    matching). Q's reading of real images (code_accuracy) can be right while G ignores the code, and the
    reverse; a code that names the shape needs both."""
    from components.evaluation.features import embed

    gen = torch.Generator().manual_seed(seed)
    codes = torch.arange(n) % model.k
    preds = [embed(net, model.sample_code(codes[s : s + batch_size], generator=gen).cpu())[1]
             for s in range(0, n, batch_size)]
    return matched_accuracy(codes.numpy(), torch.cat(preds).numpy(), model.k, num_classes)[0]


def code_metrics(model, images: np.ndarray, labels: np.ndarray, factors: dict[str, np.ndarray],
                 batch_size: int = 500) -> dict:
    """How well InfoGAN's codes, as Q reads them off test images, predict the data's known factors."""
    from components.data import to_float

    probs, means = [], []
    for s in range(0, len(images), batch_size):
        p, m = model.predict_codes(to_float(images[s : s + batch_size]))
        probs.append(p.cpu())
        means.append(m.cpu())
    probs, means = torch.cat(probs), torch.cat(means).numpy()
    acc, mapping = matched_accuracy(probs.argmax(1).numpy(), labels, probs.shape[1], int(labels.max()) + 1)
    out = {"code_accuracy": acc, "code_to_class": mapping, "code_factor_corr": {}}
    continuous = {k: v for k, v in factors.items() if k != "shape" and len(np.unique(v)) > 1}
    best = []
    for j in range(means.shape[1]):
        corr = {f: (circular_corr(means[:, j], v, factors.get("shape")) if f == "orientation" else
                    float(abs(np.corrcoef(means[:, j], v)[0, 1])) if means[:, j].std() > 0 else 0.0)
                for f, v in continuous.items()}
        out["code_factor_corr"][f"c{j + 1}"] = corr
        if corr:
            f = max(corr, key=corr.get)
            best.append(corr[f])
            out[f"code_c{j + 1}_best_factor"] = f
    out["code_factor_corr_best_mean"] = float(np.mean(best)) if best else None
    out["code_factor_corr_best"] = float(max(best)) if best else None
    return out


def _best_corr(per_code: dict[str, dict[str, float]]) -> float | None:
    best = [max(c.values()) for c in per_code.values() if c]
    return max(best) if best else None


@torch.no_grad()
def code_sample_factor_corr(model, regressor, n: int, seed: int, batch_size: int = 500) -> dict:
    """{"code_sample_factor_corr": {c<j>: {factor: |r|}}, "code_sample_factor_corr_best": the best of them}: n
    samples with every code drawn from its prior, their position and scale (grid steps) and orientation (degrees,
    wrapped to [-45, 45)) read by the factor regressor, correlated with each continuous code's value. A code G
    draws as a factor scores near 1; a code G ignores, or one it draws as something else, near 0."""
    from components.evaluation import factors as factor_lib

    if not model.j:
        return {}
    gen = torch.Generator().manual_seed(seed)
    codes, reads = [], {}
    for s in range(0, n, batch_size):
        latent = model.latent(min(batch_size, n - s), generator=gen)  # (B, z + K + J): the codes come last
        with model.evaluating():
            images = model.decode_latent(latent).cpu()
        codes.append(latent[:, -model.j :].cpu())
        for f, v in factor_lib.predict(regressor, images).items():
            reads.setdefault(f, []).append((v + 45) % 90 - 45 if f == "orientation" else v)
    c, reads = torch.cat(codes).numpy(), {f: torch.cat(v).numpy() for f, v in reads.items()}
    per = {f"c{j + 1}": {f: float(abs(np.corrcoef(c[:, j], v)[0, 1])) if v.std() > 0 else 0.0 for f, v in reads.items()}
           for j in range(model.j)}
    return {"code_sample_factor_corr": per, "code_sample_factor_corr_best": _best_corr(per)}


def untrained_code_floor(model, spec, images: np.ndarray, labels: np.ndarray, factors: dict[str, np.ndarray],
                         regressor, n: int, seed: int, copies: int = 5) -> dict[str, float]:
    """The chance level of the continuous-code figures: the mean, over `copies` freshly initialised models of
    the same family and config (seeds seed..seed+copies-1), of the best |r| of Q's reading of real images
    (code_factor_corr_untrained) and of G's samples (code_sample_factor_corr_untrained)."""
    q, g = [], []
    for i in range(copies):
        torch.manual_seed(seed + i)
        fresh = type(model)(model.config, spec).to(model.device)
        q.append(code_metrics(fresh, images, labels, factors)["code_factor_corr_best"])
        if regressor is not None:
            g.append(code_sample_factor_corr(fresh, regressor, n, seed + i).get("code_sample_factor_corr_best"))
    out = {"code_factor_corr_untrained": float(np.mean(q)) if None not in q else None}
    if g and None not in g:
        out["code_sample_factor_corr_untrained"] = float(np.mean(g))
    return out
