"""Evaluation: likelihood bounds, figures, and `evaluate_model`, which writes a model's metrics and
pictures with the protocol that produced them."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from components.config import Params
from components.data import load_spec, read_split, to_float
from components.evaluation import figures
from components.evaluation.likelihood import test_bound


def evaluate_model(params: Params, name: str, model_file: Path, out_dir: Path) -> dict:
    """Metrics of the exported model `name` on the test split and its figures under out_dir."""
    from components.models.io import load_exported

    cfg = params.evaluate
    spec = load_spec(params.path(params.data.out_dir))
    _, model = load_exported(model_file)
    if model.spec.manifest_sha256 != spec.manifest_sha256:
        from components.errors import DataError

        raise DataError(f"{model_file}: trained on dataset {model.spec.manifest_sha256[:12]} but "
                        f"{params.data.out_dir} is {spec.manifest_sha256[:12]}; rerun train@{name}")
    images, labels = read_split(params.path(params.data.out_dir), spec, "test")
    gen = torch.Generator().manual_seed(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = {
        "samples": figures.save_grid(model.sample(cfg.grid_size, generator=gen), out_dir / "samples.png",
                                     nrow=int(cfg.grid_size**0.5)),
        "interpolation": figures.save_grid(figures.interpolation(model, 4, cfg.interpolation_steps, gen),
                                           out_dir / "interpolation.png", nrow=cfg.interpolation_steps),
    }
    metrics: dict = {"model": name}
    if model.has_likelihood:
        elbo = test_bound(model, images, seed=cfg.seed)
        metrics.update(test_elbo_nats=elbo["nats"], test_elbo_bits_per_dim=elbo["bits_per_dim"])
        x = to_float(images[:64])
        figs["reconstructions"] = figures.save_grid(figures.reconstructions(model, x), out_dir / "reconstructions.png", nrow=8)
        figs["traversal"] = figures.save_grid(
            figures.latent_traversal(model, to_float(images[:1000]), cfg.traversal_dims, cfg.traversal_steps),
            out_dir / "traversal.png", nrow=cfg.traversal_steps)
    metrics["protocol"] = {
        "dataset": spec.name,
        "dataset_manifest_sha256": spec.manifest_sha256,
        "split": "test",
        "n_test": int(len(images)),
        "seed": cfg.seed,
        "likelihood": getattr(model, "likelihood", None),
        "bound": "ELBO, 1 posterior sample per image" if model.has_likelihood else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    metrics["figures"] = {k: str(Path(v).relative_to(params.root)) if Path(v).is_relative_to(params.root) else str(v)
                          for k, v in figs.items()}
    return metrics
