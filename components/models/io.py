"""Exported models: one file holding family name, config, dataset spec and state_dict (and, for a family
built on another model, that model's config: its weights are part of the state_dict).

Loaded with `torch.load(..., weights_only=True)`: only tensors and plain Python containers are stored.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from components.data.shards import DatasetSpec
from components.io import save_torch
from components.models import MODELS, GenerativeModel


def export_model(path: Path, name: str, model: GenerativeModel) -> Path:
    """Write model `name` to `path` atomically (temporary name, then rename)."""
    blob = {"family": name, "config": model.config.model_dump(), "spec": asdict(model.spec),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if MODELS[name].needs:  # the upstream's weights are in the state_dict; its config rebuilds its modules
        blob["upstream"] = {m: u.config.model_dump() for m, u in model.upstream.items()}
    return save_torch(Path(path), blob)


def load_exported(path: Path, device: str | torch.device = "cpu") -> tuple[str, GenerativeModel]:
    """(family name, model in eval mode) from an exported file."""
    from components.errors import DataError

    try:
        blob = torch.load(Path(path), map_location=device, weights_only=True)
        name, spec = blob["family"], DatasetSpec(**blob["spec"])
    except Exception as err:  # noqa: BLE001 - UnpicklingError, EOFError, KeyError, TypeError...: all mean "not ours"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: not a model file exported by GenZoo ({first[:160]}); retrain the model") from None
    upstream = {m: MODELS[m].build(cfg, spec) for m, cfg in blob.get("upstream", {}).items()}
    model = MODELS[name].build(blob["config"], spec, upstream or None)
    model.load_state_dict(blob["state_dict"])  # the upstream's weights too
    return name, model.to(device).eval()


def load_upstream(files: dict[str, str | Path]) -> dict:
    """{model: the exported model, eval mode} for upstream_files' result (or None when empty)."""
    return {m: load_exported(f)[1] for m, f in files.items()} or None
