"""Per-epoch validation objectives for tuning: the validation ELBO for likelihood models (nats,
lower is better) and FID in the featurize feature space for GANs (lower is better)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from components.data import DatasetSpec, read_split


def objective_name(has_likelihood: bool) -> str:
    return "val_neg_elbo" if has_likelihood else "val_fid"


def make_validator(has_likelihood: bool, data_dir: Path, spec: DatasetSpec, feature_net: str | None,
                   val_images: int, fid_samples: int, seed: int) -> Callable:
    images, _ = read_split(data_dir, spec, "val", limit=val_images)
    if has_likelihood:
        from components.evaluation.likelihood import test_bound

        return lambda model: {"val_neg_elbo": test_bound(model, images, seed=seed)["nats"]}
    from components.evaluation import generate
    from components.evaluation.features import embed, load_feature_net
    from components.evaluation.sample_metrics import fid

    net, _, _ = load_feature_net(Path(feature_net))
    f_val, _ = embed(net, images)

    def validate(model) -> dict[str, float]:
        f_fake, _ = embed(net, generate(model, fid_samples, seed))
        return {"val_fid": fid(f_val, f_fake)}

    return validate
