"""Promotion through the MLflow model registry: registered model `genzoo-<model>`, aliases `champion`
and `previous-champion` (registry stages are deprecated in MLflow 3), a decision with its reason on
the version's tags and in promotion/<model>.json.

A candidate is compared only with a champion evaluated on the same dataset manifest and the same
metric protocol (feature network, sample counts, seed, split, bounds); it takes `champion` only
when its primary metric is finite and lower by at least `min_improvement` (relative).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime

from mlflow.exceptions import MlflowException

from components.errors import TrackingError

CHAMPION, PREVIOUS = "champion", "previous-champion"
VOLATILE_PROTOCOL_KEYS = ("versions",)  # library versions do not change what a metric means
# Metric names before the audit's rename (they always held the negative bound, in nats): a champion registered
# under one is compared with a candidate under its new name, and protocols hash with the old spelling.
LEGACY_METRICS = {f"test_{b}{y}_nats": f"test_neg_{b}{y}_nats" for b in ("elbo", "iwae") for y in ("", "_given_y")}


def registered_name(model: str) -> str:
    return f"genzoo-{model}"


def primary_metric(model: str, metrics: dict) -> tuple[str, float | None]:
    """(key, value): the metric the family declares (`Family.primary_metric`: the IWAE bound for VAEs, FID for
    GANs; its direction and unit are in `components.evaluation.registry`); a bound family evaluated without
    importance samples falls back to its single-sample bound."""
    from components.models import MODELS

    family = MODELS[model]
    keys = [family.primary_metric, *family.capabilities.likelihood_metrics().values()]
    for key in keys:
        if metrics.get(key) is not None:
            return key, float(metrics[key])
    return family.primary_metric, None


def protocol_hash(protocol: dict) -> str:
    core = {k: v for k, v in protocol.items() if k not in VOLATILE_PROTOCOL_KEYS}
    text = json.dumps(core, sort_keys=True, default=str)
    for old, new in LEGACY_METRICS.items():  # the renamed metrics keep the hash they had
        text = text.replace(new, old)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _alias(client, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def decide(candidate: dict, champion: dict | None, min_improvement: float) -> tuple[bool, str]:
    """(promote?, reason) from {metric, value, dataset, protocol} of candidate and champion; the metric's
    direction (lower or higher is better) and label come from the metric registry."""
    from components.evaluation.registry import METRICS, label

    value = candidate["value"]
    if value is None or not math.isfinite(value):
        return False, f"candidate {candidate['metric']} is {value}: not finite"
    if champion is None:
        return True, f"no champion yet; candidate {candidate['metric']} {value:.6g}"
    if champion["dataset"] != candidate["dataset"]:
        return False, (f"champion v{champion['version']} was evaluated on dataset {champion['dataset'][:12]}, "
                       f"the candidate on {candidate['dataset'][:12]}: not compared")
    if champion["protocol"] != candidate["protocol"] or champion["metric"] != candidate["metric"]:
        return False, (f"champion v{champion['version']} used metric protocol {champion['protocol']} "
                       f"({champion['metric']}), the candidate {candidate['protocol']} ({candidate['metric']}): not compared")
    best, key = champion["value"], candidate["metric"]
    higher = METRICS[key].higher if key in METRICS else False
    name = f"{key} [{label(key)}, {'higher' if higher else 'lower'} is better]" if key in METRICS else key
    needed = best + abs(best) * min_improvement if higher else best - abs(best) * min_improvement
    if (value >= needed and value > best) if higher else (value <= needed and value < best):
        return True, f"{name} {value:.6g} beats champion v{champion['version']} {best:.6g} by at least {min_improvement:.1%}"
    return False, (f"{name} {value:.6g} does not beat champion v{champion['version']} {best:.6g} "
                   f"by {min_improvement:.1%} (needs {'>=' if higher else '<='} {needed:.6g})")


def _summary(version) -> dict:
    t = version.tags
    metric = t.get("genzoo.metric")
    return {"version": version.version, "metric": LEGACY_METRICS.get(metric, metric),
            "value": float(t["genzoo.metric_value"]) if t.get("genzoo.metric_value") not in (None, "None") else None,
            "dataset": t.get("genzoo.dataset_sha256"), "protocol": t.get("genzoo.protocol_hash")}


def promote(tracker, model: str, run_id: str, model_uri: str, metrics: dict, min_improvement: float) -> dict:
    """Register the candidate, compare it with `champion`, move the aliases if it wins; returns the decision."""
    from components.tracking.mlflow_store import using

    with using(tracker.uri):  # the registry resolves a models:/m-... source through mlflow's global URI
        return _promote(tracker, model, run_id, model_uri, metrics, min_improvement)


def _promote(tracker, model: str, run_id: str, model_uri: str, metrics: dict, min_improvement: float) -> dict:
    client, name = tracker.client, registered_name(model)
    metric, value = primary_metric(model, metrics)
    candidate = {"metric": metric, "value": value, "dataset": metrics["protocol"]["dataset_manifest_sha256"],
                 "protocol": protocol_hash(metrics["protocol"])}
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=f"GenZoo {model}; aliases {CHAMPION}, {PREVIOUS}")
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id, tags={
        "genzoo.metric": metric, "genzoo.metric_value": str(value), "genzoo.dataset_sha256": candidate["dataset"],
        "genzoo.protocol_hash": candidate["protocol"]})
    try:
        current = _alias(client, name, CHAMPION)
        champion = _summary(current) if current is not None else None
        promoted, reason = decide(candidate, champion, min_improvement)
        if promoted:
            if current is not None:
                client.set_registered_model_alias(name, PREVIOUS, current.version)
            client.set_registered_model_alias(name, CHAMPION, version.version)
        client.set_model_version_tag(name, version.version, "genzoo.decision", "promoted" if promoted else "rejected")
        client.set_model_version_tag(name, version.version, "genzoo.reason", reason)
    except Exception as err:  # leave no half-registered version behind
        try:
            client.delete_model_version(name, version.version)
        finally:
            raise TrackingError(f"promote {model}: registry update failed ({err}); version rolled back") from None
    return {"model": model, "registered_model": name, "version": int(version.version), "promoted": promoted,
            "reason": reason, "metric": metric, "value": value, "dataset_manifest_sha256": candidate["dataset"],
            "protocol_hash": candidate["protocol"], "champion_before": champion,
            "decided_at": datetime.now(UTC).isoformat(timespec="seconds")}


def registered_version_run(tracker, model: str, version) -> str | None:
    """The run id behind version `version` of genzoo-<model>, or None if there is no such version."""
    try:
        return tracker.client.get_model_version(registered_name(model), str(version)).run_id
    except MlflowException:
        return None


def rollback(tracker, model: str) -> dict:
    """Make `previous-champion` the champion again (the two aliases swap)."""
    client, name = tracker.client, registered_name(model)
    current, previous = _alias(client, name, CHAMPION), _alias(client, name, PREVIOUS)
    if previous is None:
        raise TrackingError(f"promote --rollback {model}: {name} has no '{PREVIOUS}' alias to roll back to")
    client.set_registered_model_alias(name, CHAMPION, previous.version)
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current.version)
        client.set_model_version_tag(name, current.version, "genzoo.decision", "rolled back")
    client.set_model_version_tag(name, previous.version, "genzoo.reason", f"restored by rollback from v{current.version if current else '?'}")
    return {"model": model, "champion": int(previous.version), "previous_champion": int(current.version) if current else None}


def _load(tracker, model: str, alias: str, command: str):
    """The pyfunc behind models:/genzoo-<model>@<alias>, or a one-line error naming the missing alias."""
    import mlflow

    from components.tracking.mlflow_store import using

    name = registered_name(model)
    if _alias(tracker.client, name, alias) is None:
        raise TrackingError(f"{command}: {name} has no alias '{alias}'; run `dvc repro promote` first")
    with using(tracker.uri):
        return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")


def translate_by_alias(tracker, model: str, alias: str, images, direction: str):
    """(translations, cycled back) of images ((N, C, H, W) in [0, 1], numpy) through models:/genzoo-<model>@<alias>,
    a model that declares the `translation` capability; direction "a2b" or "b2a" (the pyfunc's inference param)."""
    import numpy as np
    import torch

    from components.errors import ConfigError
    from components.models import MODELS

    loaded = _load(tracker, model, alias, "translate")
    inner = loaded.unwrap_python_model().model
    if not inner.capabilities.translation:
        able = ", ".join(m for m, f in MODELS.items() if f.capabilities.translation)
        raise ConfigError(f"--model: {model} does not translate; models that do: {able}")
    if direction not in ("a2b", "b2a"):
        raise ConfigError(f"--direction: {direction!r}; allowed: a2b, b2a")
    back = "b2a" if direction == "a2b" else "a2b"
    images = np.asarray(images, dtype=np.float32)
    out = loaded.predict({"images": images}, params={"direction": direction})
    return torch.from_numpy(out), torch.from_numpy(loaded.predict({"images": out}, params={"direction": back}))


def load_by_alias(tracker, model: str, alias: str, n: int, seed: int = 0, label: str | None = None):
    """n samples (torch, (n, C, H, W) in [0, 1]) from models:/genzoo-<model>@<alias>; `label` (a class
    name or index) for models that declare the `labels` capability."""
    import torch

    from components.errors import ConfigError

    name = registered_name(model)
    loaded = _load(tracker, model, alias, "sample")
    if loaded.unwrap_python_model().model.capabilities.translation:
        raise ConfigError(f"--model: {model} translates images and does not sample; use `genzoo translate --model {model}`")
    request = {"n": [n], "seed": [seed]}
    if label is not None:
        inner = loaded.unwrap_python_model().model
        classes = list(inner.spec.classes)
        if not inner.capabilities.labels:
            from components.models import MODELS

            conditional = ", ".join(m for m, f in MODELS.items() if f.capabilities.labels)
            raise ConfigError(f"--label: {model} is not conditional; models that take labels: {conditional}")
        if label in classes:
            index = classes.index(label)
        elif label.isdigit() and int(label) < len(classes):
            index = int(label)
        else:
            raise ConfigError(f"--label: {label!r} is not a class of {name}@{alias}; allowed: "
                              f"{', '.join(classes)} or 0..{len(classes) - 1}")
        request["label"] = [index]
    return torch.from_numpy(loaded.predict(request))
