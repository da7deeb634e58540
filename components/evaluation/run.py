"""The evaluate stage's work for one model: `evaluate_model` samples, measures and draws, and writes the
model's metrics with their protocol."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from components.config import Params
from components.data import load_spec, read_split, to_float
from components.errors import DataError, EvaluationError
from components.evaluation.likelihood import test_bound
from components.evaluation.sampling import generate


def import_libraries() -> None:
    """Import what evaluate_model uses beyond torch before its work starts: torchvision (whose ops import
    torch._dynamo) and torchmetrics (with scipy and matplotlib), ~5.5 s on one core of a 2-core box. A stage
    calls it outside its timed work, so the timing counts these imports as start-up cost."""
    import torchmetrics.image.fid  # noqa: F401
    import torchmetrics.image.kid  # noqa: F401

    from components.evaluation import figures  # noqa: F401 - torchvision


def versions() -> dict:
    """The library versions a row of metrics was computed with (part of its protocol)."""
    import torchmetrics
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "torchmetrics": torchmetrics.__version__, "python": platform.python_version()}


def inception_fid(weights: Path, real_uint8: torch.Tensor, fake: torch.Tensor) -> float:
    """Standard FID with torch-fidelity's Inception-v3 (Heusel et al. 2017), from a local weights file.

    torch-fidelity unpickles the file with weights_only=False, which runs any code a pickle holds; so the file
    is loaded here with weights_only=True (tensors and containers only, else a one-line DataError) and
    torch-fidelity gets a private copy of what that load returned."""
    import tempfile

    from torchmetrics.image.fid import FrechetInceptionDistance

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError...: all mean "not plain weights"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"evaluate.inception_weights={weights}: not a plain state_dict of tensors; refused "
                        f"({first[:160]})") from None
    with tempfile.TemporaryDirectory(prefix="genzoo-inception-") as tmp:
        safe = Path(tmp) / "weights.pth"
        torch.save(state, safe)
        metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(safe), sync_on_compute=False)
    for x, real in ((real_uint8, True), ((fake * 255).round().to(torch.uint8), False)):
        for s in range(0, len(x), 200):
            b = x[s : s + 200]
            metric.update(b.expand(-1, 3, -1, -1) if b.shape[1] == 1 else b, real=real)  # grey -> RGB
    return float(metric.compute())


def evaluate_model(params: Params, name: str, model_file: Path, out_dir: Path, feature_dir: Path, log=print) -> dict:
    """Metrics of the exported model `name` on the test split, with figures under out_dir; what is measured
    follows the family's declared capabilities (components.models.base)."""
    from components.evaluation import figures  # torchvision: imported here, not by training workers
    from components.evaluation.features import embed, load_feature_net
    from components.evaluation.sample_metrics import all_metrics
    from components.models import MODELS
    from components.models.io import load_exported

    cfg = params.evaluate
    family = MODELS[name]
    caps = family.capabilities
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
    test_labels = torch.from_numpy(labels).long()
    out_dir.mkdir(parents=True, exist_ok=True)
    protocol = {"dataset": spec.name, "dataset_manifest_sha256": spec.manifest_sha256, "split": "test", "seed": cfg.seed,
                "feature_net_sha256": net_sha, "feature_space": "penultimate layer (128-d) of the featurize classifier"}
    if caps.translation:  # a translation model does not sample: it is measured on the test split's two domains
        from components.data.shards import read_factors
        from components.evaluation.factors import load_regressor
        from components.evaluation.translation import translation_metrics

        log(f"[evaluate {name}] translating the test split's domains both ways")
        metrics, grid = translation_metrics(model, images, labels, read_factors(data_dir, spec, "test"), net,
                                            load_regressor(feature_dir / "regressor.pt"))
        metrics = {"model": name, "primary_metric": family.primary_metric, **metrics}
        figs = {"translations": figures.save_grid(grid, out_dir / "translations.png", nrow=8)}
        metrics["protocol"] = {**protocol, "translation": (
            f"A = {model.config.domain_a}, B = {model.config.domain_b} (transform_b: {model.config.transform_b}); "
            "all test images of each domain translated; FID against the target domain's test images; factor errors "
            "by the featurize factor regressor against the source's true factors (grid steps; degrees mod 90)"),
            "versions": versions()}
        metrics["figures"] = {k: Path(v).name for k, v in figs.items()}
        return metrics

    log(f"[evaluate {name}] sampling {n} images and extracting features")
    fake = generate(model, n, cfg.seed, labels=test_labels[:n] if caps.labels else None,
                    progress=lambda line: log(f"[evaluate {name}] {line}"))
    f_fake, pred_fake = embed(net, fake)
    f_real = cached["test"]["features"][:n]
    train_f, train_labels = cached["train"]["features"], cached["train"]["labels"]
    metrics: dict = {"model": name, "primary_metric": family.primary_metric, "sample_targets": family.sample_targets}
    sample = all_metrics(f_real, f_fake, pred_fake, train_labels, train_f, spec.num_classes, seed=cfg.seed, k=cfg.pr_k)
    nearest_idx = sample.pop("_nearest_index")
    metrics.update(sample)
    if cfg.inception_weights and Path(params.path(cfg.inception_weights)).is_file():
        metrics["fid_inception"] = inception_fid(params.path(cfg.inception_weights), torch.from_numpy(images[:n]), fake)
    else:
        metrics["fid_inception"] = None
        metrics["fid_inception_note"] = "not computed: set evaluate.inception_weights to a local Inception-v3 weights file"

    if caps.likelihood:
        names = caps.likelihood_metrics()
        y = labels if caps.likelihood_given_labels else None
        log(f"[evaluate {name}] test likelihood: {', '.join(names.values())}")
        from components.evaluation.likelihood import content_dims

        single = test_bound(model, images, labels=y, seed=cfg.seed, dims=content_dims(spec))
        key = names["single"].removesuffix("_nats")
        metrics.update({f"{key}_nats": single["nats"], f"{key}_bits_per_dim": single["bits_per_dim"]})
        if "importance" in names and cfg.iw_samples > 1:
            m = cfg.iw_max_images or len(images)
            iw = test_bound(model, images[:m], labels=None if y is None else y[:m], n_samples=cfg.iw_samples,
                            seed=cfg.seed, batch_size=100, dims=content_dims(spec))
            key = names["importance"].removesuffix("_nats")
            metrics.update({f"{key}_nats": iw["nats"], f"{key}_bits_per_dim": iw["bits_per_dim"], "iwae_images": iw["n"]})
    if caps.labels:
        from components.evaluation.conditional import conditional_metrics

        per_class = max(2, n // spec.num_classes)
        log(f"[evaluate {name}] conditional accuracy and per-class KID ({per_class} samples per class)")
        metrics.update(conditional_metrics(model, net, cached["test"]["features"], cached["test"]["labels"],
                                           spec.num_classes, per_class, cfg.seed))
    if caps.codes:
        from components.data.shards import read_factors
        from components.evaluation.conditional import code_metrics, code_sample_accuracy

        log(f"[evaluate {name}] code metrics: Q's codes on test images against the data's factors")
        test_factors = read_factors(data_dir, spec, "test", n)
        metrics.update(code_metrics(model, images[:n], labels[:n], test_factors))
        log(f"[evaluate {name}] code metrics: the classifier on {n} samples drawn per categorical code value")
        metrics["code_sample_accuracy"] = code_sample_accuracy(model, net, n, spec.num_classes, cfg.seed)
        from components.evaluation import factors as factor_lib
        from components.evaluation.conditional import code_sample_factor_corr, untrained_code_floor

        regressor = None
        if factor_lib.available(spec) and (feature_dir / "regressor.pt").is_file():
            regressor = factor_lib.load_regressor(feature_dir / "regressor.pt")
            log(f"[evaluate {name}] code metrics: the factor regressor on {n} samples against their continuous codes")
            metrics.update(code_sample_factor_corr(model, regressor, n, cfg.seed))
        log(f"[evaluate {name}] code metrics: the same for 5 untrained copies (chance level)")
        metrics.update(untrained_code_floor(model, spec, images[:n], labels[:n], test_factors, regressor, n, cfg.seed))

    if caps.codebook:
        from components.evaluation.codebook import codebook_metrics

        log(f"[evaluate {name}] codebook usage over the test split")
        metrics.update(codebook_metrics(model, images))
        with torch.no_grad(), model.evaluating():  # do reconstructions keep what the classifier reads (the shape)?
            recon = torch.cat([model.reconstruct(to_float(images[s : s + 500]).to(model.device)).cpu()
                               for s in range(0, len(images), 500)])
        _, pred_recon = embed(net, recon)
        metrics["recon_accuracy"] = float((pred_recon == test_labels).float().mean())

    gen = torch.Generator().manual_seed(cfg.seed)
    drawers = {
        "samples": lambda: (fake[: cfg.grid_size], int(cfg.grid_size**0.5)),
        "nearest_neighbours": lambda: (figures.beside(fake[:32], torch.from_numpy(read_rows(data_dir, spec, "train", nearest_idx[:32]))), 8),
        "interpolation": lambda: (figures.interpolation(model, 4, cfg.interpolation_steps, gen), cfg.interpolation_steps),
        "class_grid": lambda: (figures.class_grid(model, spec.num_classes, 8, gen), 8),
        "reconstructions": lambda: (figures.reconstructions(model, to_float(images[:64]), test_labels[:64] if caps.labels else None), 8),
        "traversal": lambda: (figures.latent_traversal(model, to_float(images[:1000]), cfg.traversal_dims, cfg.traversal_steps,
                                                      test_labels[:1000] if caps.labels else None), cfg.traversal_steps),
        "code_traversal": lambda: (model.code_traversal(cfg.traversal_steps, gen), cfg.traversal_steps),
    }
    figs = {}
    for fig in family.figures:
        grid, nrow = drawers[fig]()
        figs[fig] = figures.save_grid(grid, out_dir / f"{fig}.png", nrow=nrow)
    metrics["protocol"] = {
        **protocol,
        "n_real": n,
        "n_fake": n,
        "precision_recall_k": cfg.pr_k,
        "kid_subsets": 50,
        "memorization_reference": f"test images' nearest-train distances, quantile {cfg.memorization_quantile}",
        "likelihood": getattr(model, "likelihood", None),
        "likelihood_metrics": (f"{caps.likelihood}: {', '.join(caps.likelihood_metrics().values())}"
                   + (f" (importance samples {cfg.iw_samples})" if caps.likelihood == "bound" else "")) if caps.likelihood else None,
        "conditioning": ("sample metrics on samples for the test split's labels; conditional accuracy and per-class KID "
                         "on n/K samples generated per class, against each class's test images") if caps.labels else None,
        "codes": ("Q's categorical code on test images vs the class label after the best code-to-class matching; "
                  "the classifier on n samples drawn per code value, matched the same way (code_sample_accuracy); "
                  "|Pearson r| of each continuous code (Q's mean on test images) with every factor; the same for each "
                  "code's value against the factor regressor's reading of n samples (code_sample_factor_corr); "
                  "*_untrained: the best |r| of 5 freshly initialised copies, the chance level") if caps.codes else None,
        "codebook": ("codes of the test split's images: perplexity exp(H) of their histogram (at most K), dead codes "
                     "never used; the bound uses the deterministic nearest-code posterior") if caps.codebook else None,
        "versions": versions(),
    }
    nested = ("model", "protocol", "sample_class_histogram", "data_class_histogram", "fid_inception_note", "primary_metric",
              "kid_per_class", "code_to_class", "code_factor_corr", "code_sample_factor_corr")
    if not all(isinstance(v, (int, float)) or v is None for k, v in metrics.items()
               if k not in nested and not k.endswith("_best_factor")):
        raise EvaluationError(f"evaluate {name}: a metric is not a number")
    metrics["figures"] = {k: Path(v).name for k, v in figs.items()}
    return metrics


def read_rows(data_dir: Path, spec, split: str, idx: torch.Tensor):
    images, _ = read_split(data_dir, spec, split)
    return images[idx.numpy()]
