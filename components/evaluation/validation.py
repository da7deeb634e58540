"""Per-epoch validation objectives for tuning, as each family declares (`Family.objective`, lower is
better): the validation bound for likelihood models (nats; given the labels for conditional likelihoods),
the mean cycle L1 for translation models, FID in the featurize feature space for the others (conditional
models generate for the validation labels)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from components.data import DatasetSpec, read_split
from components.data.shards import read_factors


def make_validator(family, data_dir: Path, spec: DatasetSpec, feature_net: str | None,
                   val_images: int, fid_samples: int, seed: int) -> Callable:
    """model -> {family.objective: value} on the validation split."""
    caps, objective = family.capabilities, family.objective
    images, labels = read_split(data_dir, spec, "val", limit=val_images)
    if caps.translation:  # mean cycle L1 of the validation split's two domains, both ways
        from components.data import to_float

        def cycle(model) -> dict[str, float]:
            model.eval()
            with torch.no_grad():
                dom = model.domains(to_float(images).to(model.device), torch.from_numpy(labels).to(model.device))
                return {objective: float(model.cycle_loss(dom["a"][0], dom["b"][0])) / 2}

        return cycle
    if caps.likelihood:
        from components.evaluation.likelihood import test_bound

        y = labels if caps.likelihood_given_labels else None
        return lambda model: {objective: test_bound(model, images, labels=y, seed=seed)["nats"]}
    import torchmetrics.image.fid  # noqa: F401 - here, not in the first (timed) validation: ~2.5 s with scipy

    from components.evaluation.features import embed, load_feature_net
    from components.evaluation.sample_metrics import fid
    from components.evaluation.sampling import generate

    net, _, _ = load_feature_net(Path(feature_net))
    f_val, _ = embed(net, images)
    y = torch.from_numpy(labels).long().repeat(fid_samples // len(labels) + 1)[:fid_samples] if caps.labels else None

    def validate(model) -> dict[str, float]:
        f_fake, _ = embed(net, generate(model, fid_samples, seed, labels=y))
        return {objective: fid(f_val, f_fake)}

    return validate


def make_quality(family, data_dir: Path, spec: DatasetSpec, feature_net: str | None, n: int, seed: int,
                 k: int = 3) -> Callable:
    """model -> {metric: value}: the quality a family is judged on, measured after every training epoch on
    the first `n` validation images with a fixed seed (so the curve moves only when the model does):
      q_fid, q_precision, q_recall  FID (Heusel et al. 2017) and improved precision/recall (Kynkaanniemi et
                                    al. 2019, k nearest neighbours) of n samples against n validation images
                                    in the featurize feature space (families whose sampling is cheap:
                                    `Family.curve_samples`);
      q_cond_accuracy               the feature classifier's agreement with the requested class (conditional);
      q_code_accuracy               InfoGAN: Q's categorical code on validation images against the shape,
                                    after the best one-to-one code -> class matching;
      q_code_sample_accuracy        InfoGAN: the classifier on samples drawn per code value, matched the same way;
      q_code_factor_corr            InfoGAN: the best |Pearson r| of a continuous code (Q's mean on validation
                                    images) with a known factor (position, scale, orientation), as evaluate's;
      <objective>                   validation NLL or -ELBO in nats (likelihood families; the tuning objective);
      q_target_rate, q_cycle_l1     translation: share of translations put in the target class, cycle L1.
    q_floor_* hold the same measures with real test images in place of the samples (the real-data floor at
    this N). Names start with q_ (or are the family's val_ objective) so curves and losses stay apart."""
    caps = family.capabilities
    images, labels = read_split(data_dir, spec, "val", limit=n)
    net = None
    if feature_net is not None and Path(feature_net).is_file():
        import torchmetrics.image.fid  # noqa: F401 - imported here, not inside the first timed epoch

        from components.evaluation.features import load_feature_net

        net, _, _ = load_feature_net(Path(feature_net))
    parts: list[Callable] = []
    if caps.translation:
        from components.evaluation.translation import translation_metrics

        def translation(model) -> dict[str, float]:
            if net is None:
                return {}
            m, _ = translation_metrics(model, images, labels, {}, net, None)
            return {"q_target_rate": m.get("translation_target_rate"), "q_cycle_l1": m.get("cycle_l1"),
                    "q_translation_fid": m.get("translation_fid")}

        parts.append(translation)
    elif caps.likelihood:
        parts.append(make_validator(family, data_dir, spec, None, n, n, seed))
    if not caps.translation and family.curve_samples and net is not None:
        from components.evaluation.features import embed
        from components.evaluation.sample_metrics import fid, precision_recall
        from components.evaluation.sampling import generate

        f_val, val_pred = embed(net, images)
        y = torch.arange(len(images)) % spec.num_classes if caps.labels else None  # balanced requests
        # the real-data floor at the same N: the first n test images in place of the samples
        f_test, _ = embed(net, read_split(data_dir, spec, "test", limit=len(images))[0])
        p, r = precision_recall(f_val, f_test, k=k)
        floor = {"q_floor_fid": fid(f_val, f_test), "q_floor_precision": p, "q_floor_recall": r}
        if y is not None:
            floor["q_floor_cond_accuracy"] = float((val_pred == torch.from_numpy(labels).long()).float().mean())

        def samples(model) -> dict[str, float]:
            f_fake, pred = embed(net, generate(model, len(images), seed, labels=y))
            p, r = precision_recall(f_val, f_fake, k=k)
            out = {"q_fid": fid(f_val, f_fake), "q_precision": p, "q_recall": r, **floor}
            if y is not None:
                out["q_cond_accuracy"] = float((pred == y).float().mean())
            return out

        parts.append(samples)
    if caps.codes:
        from components.evaluation.conditional import code_metrics

        val_factors = read_factors(data_dir, spec, "val", limit=n)

        def codes(model) -> dict[str, float]:
            m = code_metrics(model, images, labels, val_factors)
            return {"q_code_accuracy": m["code_accuracy"], "q_code_factor_corr": m["code_factor_corr_best"]}

        parts.append(codes)
        if net is not None:
            from components.evaluation.conditional import code_sample_accuracy

            parts.append(lambda model: {"q_code_sample_accuracy": code_sample_accuracy(model, net, len(images),
                                                                                      spec.num_classes, seed)})

    def quality(model) -> dict[str, float]:
        out: dict[str, float] = {}
        with model.evaluating(), torch.no_grad():
            for part in parts:
                out.update({k: v for k, v in part(model).items() if v is not None})
        return out

    return quality
