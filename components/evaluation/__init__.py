"""Evaluation: the feature network (`features`), sample metrics (`sample_metrics`), likelihood bounds
(`likelihood`), figures, and `evaluate_model`, which writes a model's metrics with their protocol."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from components.config import Params
from components.data import load_spec, read_split, to_float
from components.errors import DataError, EvaluationError
from components.evaluation.likelihood import test_bound


def _versions() -> dict:
    import torchmetrics
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "torchmetrics": torchmetrics.__version__, "python": platform.python_version()}


@torch.no_grad()
def generate(model, n: int, seed: int, batch_size: int = 500) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([model.sample(min(batch_size, n - s), generator=gen).cpu() for s in range(0, n, batch_size)])


def inception_fid(weights: Path, real_uint8: torch.Tensor, fake: torch.Tensor) -> float:
    """Standard FID with torch-fidelity's Inception-v3 (Heusel et al. 2017), from a local weights file."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
    for x, real in ((real_uint8, True), ((fake * 255).round().to(torch.uint8), False)):
        for s in range(0, len(x), 200):
            b = x[s : s + 200]
            metric.update(b.expand(-1, 3, -1, -1) if b.shape[1] == 1 else b, real=real)  # grey -> RGB
    return float(metric.compute())


def evaluate_model(params: Params, name: str, model_file: Path, out_dir: Path, feature_dir: Path, log=print) -> dict:
    from components.evaluation import figures  # torchvision: imported here, not by training workers
    """Metrics of the exported model `name` on the test split, with figures under out_dir."""
    from components.evaluation.features import embed, load_feature_net
    from components.evaluation.sample_metrics import all_metrics
    from components.models.io import load_exported

    cfg = params.evaluate
    data_dir = params.path(params.data.out_dir)
    spec = load_spec(data_dir)
    _, model = load_exported(model_file)
    if model.spec.manifest_sha256 != spec.manifest_sha256:
        raise DataError(f"{model_file}: trained on dataset {model.spec.manifest_sha256[:12]} but "
                        f"{params.data.out_dir} is {spec.manifest_sha256[:12]}; rerun train@{name}")
    if not (feature_dir / "classifier.pt").is_file():
        raise DataError(f"{feature_dir / 'classifier.pt'}: no feature network; run `dvc repro featurize` first")
    net, net_sha, net_data = load_feature_net(feature_dir / "classifier.pt")
    if net_data != spec.manifest_sha256:
        raise DataError(f"{feature_dir / 'classifier.pt'}: trained on another dataset; rerun featurize")
    cached = torch.load(feature_dir / "features.pt", weights_only=True)
    images, labels = read_split(data_dir, spec, "test")
    n = min(cfg.n_samples, len(images))
    out_dir.mkdir(parents=True, exist_ok=True)

    log(f"[evaluate {name}] sampling {n} images and extracting features")
    fake = generate(model, n, cfg.seed)
    f_fake, pred_fake = embed(net, fake)
    f_real = cached["test"]["features"][:n]
    train_f, train_labels = cached["train"]["features"], cached["train"]["labels"]
    metrics: dict = {"model": name}
    sample = all_metrics(f_real, f_fake, pred_fake, train_labels, train_f, spec.num_classes, seed=cfg.seed, k=cfg.pr_k)
    nearest_idx = sample.pop("_nearest_index")
    metrics.update(sample)
    if cfg.inception_weights and Path(params.path(cfg.inception_weights)).is_file():
        metrics["fid_inception"] = inception_fid(params.path(cfg.inception_weights), torch.from_numpy(images[:n]), fake)
    else:
        metrics["fid_inception"] = None
        metrics["fid_inception_note"] = "not computed: set evaluate.inception_weights to a local Inception-v3 weights file"

    if model.has_likelihood:
        log(f"[evaluate {name}] test ELBO and IWAE-{cfg.iw_samples} bound")
        elbo = test_bound(model, images, seed=cfg.seed)
        metrics.update(test_elbo_nats=elbo["nats"], test_elbo_bits_per_dim=elbo["bits_per_dim"])
        if cfg.iw_samples > 1:
            m = cfg.iw_max_images or len(images)
            iw = test_bound(model, images[:m], n_samples=cfg.iw_samples, seed=cfg.seed, batch_size=100)
            metrics.update(test_iwae_nats=iw["nats"], test_iwae_bits_per_dim=iw["bits_per_dim"], iwae_images=iw["n"])

    gen = torch.Generator().manual_seed(cfg.seed)
    grid = fake[: cfg.grid_size]
    figs = {
        "samples": figures.save_grid(grid, out_dir / "samples.png", nrow=int(cfg.grid_size**0.5)),
        "interpolation": figures.save_grid(figures.interpolation(model, 4, cfg.interpolation_steps, gen),
                                           out_dir / "interpolation.png", nrow=cfg.interpolation_steps),
        "nearest_neighbours": figures.save_grid(
            figures.beside(fake[:32], torch.from_numpy(read_rows(data_dir, spec, "train", nearest_idx[:32]))),
            out_dir / "nearest_neighbours.png", nrow=8),
    }
    if model.has_likelihood:
        x = to_float(images[:64])
        figs["reconstructions"] = figures.save_grid(figures.reconstructions(model, x), out_dir / "reconstructions.png", nrow=8)
        figs["traversal"] = figures.save_grid(
            figures.latent_traversal(model, to_float(images[:1000]), cfg.traversal_dims, cfg.traversal_steps),
            out_dir / "traversal.png", nrow=cfg.traversal_steps)
    metrics["protocol"] = {
        "dataset": spec.name,
        "dataset_manifest_sha256": spec.manifest_sha256,
        "split": "test",
        "n_real": n,
        "n_fake": n,
        "seed": cfg.seed,
        "feature_net_sha256": net_sha,
        "feature_space": "penultimate layer (128-d) of the featurize classifier",
        "precision_recall_k": cfg.pr_k,
        "kid_subsets": 50,
        "memorization_reference": f"test images' nearest-train distances, quantile {cfg.memorization_quantile}",
        "likelihood": getattr(model, "likelihood", None),
        "bounds": f"ELBO (1 sample); IWAE-{cfg.iw_samples}" if model.has_likelihood else None,
        "versions": _versions(),
    }
    if not all(isinstance(v, (int, float)) or v is None for k, v in metrics.items()
               if k not in ("model", "protocol", "sample_class_histogram", "data_class_histogram", "fid_inception_note")):
        raise EvaluationError(f"evaluate {name}: a metric is not a number")
    metrics["figures"] = {k: Path(v).name for k, v in figs.items()}
    return metrics


def read_rows(data_dir: Path, spec, split: str, idx: torch.Tensor):
    images, _ = read_split(data_dir, spec, split)
    return images[idx.numpy()]
