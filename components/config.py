"""Typed, validated view of params.yaml.

Every section is a pydantic model that rejects unknown keys. `load_config` turns any problem into a
`ConfigError` whose message is one line naming the key and what is allowed, so stage scripts can exit
before Ray starts. Model sections are validated by the config class that each model family registers
in `components.models.MODELS`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from components.code import stage_code
from components.errors import ConfigError
from components.schema import StrictNumbers, is_numeric, one_line

DATASETS = ("dsprites", "mnist", "fashion_mnist", "cifar10")
RESOLUTIONS = (32, 64)


SEED = Field(0, ge=0, le=2**32 - 1)  # every seed: numpy, torch and Optuna accept 32-bit seeds


class Section(StrictNumbers):
    pass


class DataConfig(Section):
    dataset: Literal["dsprites", "mnist", "fashion_mnist", "cifar10", "folder"] = "dsprites"  # folder: data.source_dir
    resolution: Literal[32, 64] = 32  # output side length in pixels (DCGAN needs a power of two)
    seed: int = SEED  # seeds dSprites factor sampling and the train/val split
    n_train: int = Field(20000, ge=1)  # dsprites: training images (torchvision sets: cap, see below)
    n_val: int = Field(2000, ge=1)  # validation images (held out from the training split)
    n_test: int = Field(2000, ge=1)  # dsprites: test images; torchvision sets use their test split
    orientation_steps: int = Field(40, ge=1, le=40)  # dsprites: the first N of the 40 orientations (9 degrees apart)
    max_train: int | None = Field(None, ge=1)  # torchvision sets: keep at most this many train images
    binarize: bool = False  # threshold pixels at 0.5 (makes a Bernoulli likelihood valid on MNIST)
    source_dir: str | None = None  # folder: your images; torchvision sets: pre-staged files (air-gapped); None: download
    shard_rows: int = Field(8192, ge=64)  # rows per Parquet shard
    out_dir: str = "datasets/prepared"  # where prepare writes shards and dataset.json

    @model_validator(mode="after")
    def _folder_needs_its_source(self):
        if self.dataset == "folder" and not self.source_dir:
            raise ValueError("data.dataset: folder needs data.source_dir, the folder of your images (class "
                             "subfolders give labels; see README)")
        return self


class TrainConfig(Section):
    workers: int = Field(2, ge=1)  # Ray Train DDP workers
    cpus_per_worker: int = Field(1, ge=1)  # torch threads and Ray CPUs per worker
    use_gpu: Literal["auto", "yes", "no"] = "auto"  # auto: GPU workers when the cluster has GPUs
    seed: int = SEED  # model init, data order and noise; the same seed gives the same run
    checkpoint_every: int = Field(1, ge=1)  # epochs between checkpoints (the last epoch always saves)
    max_failures: int = Field(2, ge=0)  # worker-group restarts from the last checkpoint
    log_every: int = Field(50, ge=1)  # steps between progress lines on rank 0
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # bf16: autocast forward passes (CUDA or CPU), fp32
    # weights; auto: bf16 where the device computes it natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or
    # AMX-BF16), else fp32 (components.training.loop.resolve_precision)
    compile: bool = False  # torch.compile each sub-network (pays a compile on the first steps)
    channels_last: bool = False  # NHWC memory format for conv models and their inputs (faster on tensor cores)
    quality_images: int = Field(500, ge=0)  # validation images (and samples) of the per-epoch quality curve; 0: off


class EvaluateConfig(Section):
    seed: int = SEED  # seeds sampling for figures and metrics
    n_samples: int = Field(10000, ge=100)  # real and generated images per sample metric (capped at the test split)
    iw_samples: int = Field(1000, ge=1)  # importance samples of the IWAE bound (1: ELBO only)
    iw_max_images: int | None = Field(None, ge=1)  # test images for the IWAE bound (None: the whole split)
    feature_epochs: int = Field(5, ge=1)  # epochs of the feature classifier
    min_feature_accuracy: float | None = Field(None, gt=0, le=1)  # gate; None: 0.99 dsprites, 0.97 mnist, ...
    inception_weights: str | None = None  # local pt_inception-2015-12-05 weights file: adds standard FID
    pr_k: int = Field(3, ge=1)  # k of improved precision/recall
    memorization_quantile: float = Field(0.05, gt=0, lt=1)  # held-out NN-distance quantile for memorization
    grid_size: int = Field(64, ge=4)  # images in the sample grid
    interpolation_steps: int = Field(10, ge=3)  # images in a latent interpolation strip
    traversal_steps: int = Field(9, ge=3)  # columns of the VAE latent traversal grid
    traversal_dims: int = Field(10, ge=1)  # rows (latent dimensions with the highest KL) of the grid


class SpaceParam(Section):
    """One searched hyperparameter: uniform/loguniform over [low, high], int in [low, high], or a choice."""

    type: Literal["uniform", "loguniform", "int", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None

    def check(self, key: str) -> None:
        if self.type == "choice":
            if not self.values:
                raise ConfigError(f"{key}.values: a non-empty list is required for type choice")
            return
        if self.low is None or self.high is None:
            raise ConfigError(f"{key}: low and high are required for type {self.type}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError(f"{key}: low and high must be finite numbers (got {self.low}, {self.high})")
        if not self.low < self.high:
            raise ConfigError(f"{key}: low must be below high (got {self.low} >= {self.high})")
        if self.type == "loguniform" and self.low <= 0:
            raise ConfigError(f"{key}.low: must be > 0 for loguniform (got {self.low})")


class ModelTune(Section):
    num_samples: int = Field(0, ge=0)  # trials; 0 disables tuning (train uses models.<name> as is)
    max_epochs: int = Field(2, ge=1)  # epochs of the longest trial (ASHA's max_t)
    space: dict[str, SpaceParam] = Field(default_factory=dict)  # models.<name> key -> distribution
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)  # configs tried first, in order


class TuneSettings(Section):
    max_concurrent_trials: int = Field(1, ge=1)  # capped so trial drivers never starve Train workers
    workers_per_trial: int = Field(1, ge=1)  # 1: the trial trains in its Tune actor; >1: a Ray Train run per trial
    grace_period: int = Field(1, ge=1)  # ASHA: epochs before a trial can be stopped
    reduction_factor: float = Field(2.0, gt=1)  # ASHA: keep 1/reduction_factor at each rung
    epoch_images: int | None = Field(None, ge=1)  # images per trial epoch (ASHA's time unit); None: the whole split
    val_images: int = Field(1000, ge=10)  # validation images for the objective
    fid_samples: int = Field(500, ge=10)  # generated images per FID objective (GANs)
    seed: int = SEED  # Optuna's sampler seed


class PromoteConfig(Section):
    min_improvement: float = Field(0.01, ge=0, lt=1)  # relative: the candidate's metric must be this much lower


class ModelInputs(Section):
    """pipeline.models.<m>: what model m's tune and train stages read; dvc.yaml makes each a dependency."""

    data: str  # the prepared data (data.out_dir), or models/<m> of the model its family is built on (Family.needs)
    code1: str | None = None  # code1-3: components/models/<stem>.py files the family imports besides its own
    code2: str | None = None  # and base.py (components.code.stage_code; a spare slot names the family itself):
    code3: str | None = None  # editing vae.py reruns vae's and cvae's stages only. load_config checks them

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, value):
        return {"data": value} if isinstance(value, str) else value  # the older form: load_config says what to add


def pipeline_entry(name: str, data: str) -> dict[str, str]:
    """The pipeline.models entry of model `name` trained on `data` (see ModelInputs)."""
    return {"data": data, **stage_code(name)}


def flow(entry: dict[str, str]) -> str:
    """A mapping as YAML flow style, the way params.yaml writes pipeline.models entries."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in entry.items()) + "}"


class PipelineConfig(Section):
    # model -> what its tune and train stages read (ModelInputs): dvc.yaml's foreach passes each entry as ${item}
    models: dict[str, ModelInputs] = Field(
        default_factory=lambda: {m: pipeline_entry(m, "datasets/prepared") for m in ("vae", "dcgan")}, min_length=1)

    @field_validator("models", mode="before")
    @classmethod
    def _mapping(cls, value):
        if isinstance(value, list):
            raise ValueError("a mapping of model -> what it trains on and the model files it imports "
                             "({vae: {data: datasets/prepared, code1: layers, ...}}), not a list")
        return value


class MlflowConfig(Section):
    tracking_uri: str | None = None  # None: sqlite:///<repo>/mlflow.db; MLFLOW_TRACKING_URI wins
    experiment: str = "genzoo"
    system_metrics_interval: float = Field(10.0, ge=0)  # seconds between CPU/memory/disk/network (and GPU) samples; 0: off


class RayConfig(Section):
    address: str | None = None  # None: start a local Ray; RAY_ADDRESS wins
    storage_path: str | None = None  # Ray Train storage (checkpoints); None: <repo>/.genzoo/ray


class Params(Section):
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    evaluate: EvaluateConfig = EvaluateConfig()
    promote: PromoteConfig = PromoteConfig()
    pipeline: PipelineConfig = PipelineConfig()
    mlflow: MlflowConfig = MlflowConfig()
    ray: RayConfig = RayConfig()
    tune: dict[str, Any] = Field(default_factory=dict)  # shared TuneSettings keys, plus one ModelTune per model
    profile: str | None = None  # name of a `profiles` entry laid over the sections above (e.g. gpu)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)  # named overlays: {name: {section: {...}}}
    _root: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def root(self) -> Path:
        """The project directory: where params.yaml lives; relative paths are taken from here."""
        return self._root

    def path(self, p: str | os.PathLike) -> Path:
        """Absolute path of `p` (Ray workers chdir elsewhere, so every path handed to them is absolute)."""
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self._root / p).resolve()

    def model_config_for(self, name: str) -> BaseModel:
        """The validated config of model `name` (defaults for keys params.yaml leaves out)."""
        from components.models import MODELS

        if name not in MODELS:
            raise ConfigError(f"unknown model '{name}'; allowed: {', '.join(sorted(MODELS))}")
        try:
            return MODELS[name].Config(**self.models.get(name, {}))
        except ValidationError as err:
            raise ConfigError(one_line(err, prefix=f"models.{name}")) from None


def tune_settings(params: Params) -> TuneSettings:
    shared = {k: v for k, v in params.tune.items() if k in TuneSettings.model_fields}
    try:
        return TuneSettings(**shared)
    except ValidationError as err:
        raise ConfigError(one_line(err, prefix="tune")) from None


def model_tune(params: Params, name: str) -> ModelTune:
    """tune.<name> validated on its own (num_samples 0 when params.yaml has none); tune_for also checks
    the space against the model's parameters."""
    try:
        return ModelTune(**params.tune.get(name, {}))
    except ValidationError as err:
        raise ConfigError(one_line(err, prefix=f"tune.{name}")) from None


def tune_for(params: Params, name: str) -> ModelTune:
    """The validated sweep of model `name` (num_samples 0 when params.yaml has none)."""
    spec = model_tune(params, name)
    from components.models import MODELS

    base = params.model_config_for(name).model_dump()
    fields = MODELS[name].Config.model_fields
    for key, dist in spec.space.items():
        where = f"tune.{name}.space.{key}"
        if key not in fields or key in ("epochs", "batch_size"):
            allowed = ", ".join(k for k in fields if k not in ("epochs", "batch_size"))
            raise ConfigError(f"{where}: not a searchable parameter of {name}; allowed: {allowed}")
        dist.check(where)
        integer = fields[key].annotation is int
        if dist.type == "int" and not integer:
            raise ConfigError(f"{where}: type int, but models.{name}.{key} is not an integer")
        if dist.type in ("uniform", "loguniform") and not is_numeric(fields[key].annotation):
            raise ConfigError(f"{where}: type {dist.type}, but models.{name}.{key} is not a number; use type choice")
        if dist.type in ("uniform", "loguniform") and integer:
            raise ConfigError(f"{where}: type {dist.type} on the integer models.{name}.{key}; use type int")
        if dist.type == "int" and not (float(dist.low).is_integer() and float(dist.high).is_integer()):
            raise ConfigError(f"{where}: type int needs whole-number low and high (got {dist.low}, {dist.high})")
        values = dist.values if dist.type == "choice" else [int(dist.low), int(dist.high)] if integer else [dist.low, dist.high]
        labels = [f"values[{i}]" for i in range(len(values))] if dist.type == "choice" else ["low", "high"]
        for label, value in zip(labels, values, strict=True):
            try:
                MODELS[name].Config(**{**base, key: value})
            except ValidationError as err:
                problem = one_line(err).split(": ", 1)[-1]
                raise ConfigError(f"{where}.{label}: {value!r} is not allowed for models.{name}.{key}: {problem}") from None
    for i, point in enumerate(spec.points_to_evaluate):
        extra, missing = set(point) - set(spec.space), set(spec.space) - set(point)
        if extra:
            raise ConfigError(f"tune.{name}.points_to_evaluate[{i}]: keys {sorted(extra)} are not in tune.{name}.space")
        if missing:
            raise ConfigError(f"tune.{name}.points_to_evaluate[{i}]: must set every searched key; missing {sorted(missing)}")
    return spec


def _overlay(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _overlay(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_profile(raw: dict) -> dict:
    """Lay `profiles[profile]` over the sections (`dvc exp run -S profile=gpu` switches a whole run)."""
    name = raw.get("profile")
    if name is None:
        return raw
    profiles = raw.get("profiles") or {}
    if name not in profiles:
        raise ConfigError(f"profile: unknown profile '{name}'; allowed: {', '.join(sorted(profiles)) or 'none defined'}")
    overlay = profiles[name] or {}
    if not isinstance(overlay, dict) or {"profile", "profiles"} & set(overlay):
        raise ConfigError(f"profiles.{name}: must map sections (train, models, ...) to values, not name profiles")
    return _overlay(raw, overlay)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses what a params file never needs and a reader cannot see: a key given twice in
    one mapping (YAML would keep the last one silently) and anchors/aliases (an alias bomb expands
    exponentially; DVC would then spend minutes on the same file)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(f"{self.name}:{mark.line + 1}: YAML aliases (*name) are not allowed in a params file; "
                              "write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"{self.name}:{key_node.start_mark.line + 1}: duplicate key {key!r} (first at line "
                                  f"{seen[key] + 1}); keep one")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def strict_yaml(path: Path):
    """The YAML document in `path`, with duplicate keys and aliases refused (ConfigError naming the line)."""
    text = path.read_text()
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data() or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    finally:
        loader.dispose()


def read_params(path: str | os.PathLike = "params.yaml") -> Params:
    """Read params.yaml and validate its sections, without the models' own sections or the model registry
    (which imports every family, and so torch): what a stage that does not build a model needs. Most stages
    use load_config, which checks everything."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    raw = strict_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (data, train, models, ...)")
    raw = apply_profile(raw)
    try:
        params = Params(**raw)
    except ValidationError as err:
        raise ConfigError(one_line(err)) from None
    params._root = path.resolve().parent
    out = params.path(params.data.out_dir)
    if out == params.root or params.root.is_relative_to(out) or not out.is_relative_to(params.root):
        raise ConfigError(f"data.out_dir: must be a folder inside the project, below {params.root} "
                          f"(got {params.data.out_dir!r}, which is {out}); prepare replaces it as a whole")
    tune_settings(params)
    return params


def load_config(path: str | os.PathLike = "params.yaml", models: list[str] | None = None) -> Params:
    """Read and validate params.yaml; also validates the sections of `models` (default: pipeline.models)."""
    params = read_params(path)
    from components.models import MODELS

    for name in params.models:
        if name not in MODELS:
            raise ConfigError(f"models.{name}: unknown model; allowed: {', '.join(sorted(MODELS))}")
    for name in params.pipeline.models if models is None else models:
        if name not in MODELS:
            raise ConfigError(f"pipeline.models: unknown model '{name}'; allowed: {', '.join(sorted(MODELS))}")
        params.model_config_for(name)
    check_inputs(params)
    for name in params.tune:
        if name not in TuneSettings.model_fields:
            if name not in MODELS:
                raise ConfigError(f"tune.{name}: unknown model or setting; allowed: "
                                  f"{', '.join(sorted(MODELS) + list(TuneSettings.model_fields))}")
            tune_for(params, name)
    return params


def check_inputs(params: Params) -> None:
    """pipeline.models maps each model to what its stages read: data.out_dir, or models/<m> of the model its family
    is built on (Family.needs), listed before it; and the model files its family imports (stage_code), which
    dvc.yaml turns into the stages' dependencies, so an import added without them is refused, not missed."""
    from components.models import MODELS

    order = list(params.pipeline.models)
    data = Path(params.data.out_dir).as_posix().rstrip("/")
    for i, (name, given) in enumerate(params.pipeline.models.items()):
        needs = MODELS[name].needs
        want = f"models/{needs[0]}" if needs else data
        what = f"it is built on {needs[0]}'s export" if needs else "it trains on the prepared data, data.out_dir"
        if Path(given.data).as_posix().rstrip("/") != want:
            raise ConfigError(f"pipeline.models.{name}.data: must be {want} ({what}); got {given.data!r}")
        for need in needs:
            if need not in order[:i]:
                raise ConfigError(f"pipeline.models.{name}: needs {need} listed before it (it is built on {need}'s "
                                  f"export); add {need}: {flow(pipeline_entry(need, data))} above {name}")
        try:
            code = stage_code(name)
        except ValueError as e:  # more model files than slots: add one to SLOTS, ModelInputs and dvc.yaml
            raise ConfigError(f"pipeline.models.{name}: {e}") from None
        slots = given.model_dump(exclude={"data"})
        if slots != code:
            got = "its data alone" if not any(slots.values()) else flow(given.model_dump())
            raise ConfigError(f"pipeline.models.{name}: must be {flow({'data': given.data, **code})} (the model files "
                              f"components/models/{name}.py imports: its stages' dvc.yaml deps); got {got}")


def config_hash(obj: Any) -> str:
    """Stable short hash of a JSON-able config (keys checkpoints and runs to their resolved config)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
