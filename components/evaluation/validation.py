"""Per-epoch validation objectives for tuning, as each family declares (`Family.objective`, lower is
better): the validation bound for likelihood models (nats; given the labels for conditional likelihoods),
the mean cycle L1 for translation models, FID in the featurize feature space for the others (conditional
models generate for the validation labels)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from components.data import DatasetSpec, read_split


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
