"""The Ray adapter: the only place that imports Ray. Connects to (or starts) Ray and runs the training
loop on `workers` Ray Train workers (TorchTrainer: gloo on CPU, NCCL on GPU).

Checkpoints are reported through `ray.train.report` into `storage_path/run_name`; a worker-group
restart (FailureConfig.max_failures) and a re-created trainer with the same (storage_path, run_name)
both resume from the latest one. A non-finite loss is reported as a final `genzoo_error` with a marker
checkpoint (so the driver sees it in `Result.metrics`) instead of raising, which Ray would retry.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from components.config import TrainConfig
from components.errors import ConfigError, TrainingError
from components.training import faults

STATE_FILE = "state.pt"
# Set before Ray is first imported (its constants read them at import); a user's own setting wins.
RAY_ENV = {
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",  # workers use this interpreter, not a second `uv run` venv
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",  # otherwise each worker print appears twice
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",  # no spot preemption on a laptop or CI box
    "RAY_TRAIN_METRICS_ENABLED": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Worker processes import torch: on a loaded 2-core box a worker group can take over the 60 s default.
    "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "300",
    # The controller takes one report per poll and polls every 2 s by default: 12 VAE epochs of 1.2 s
    # became 12 x 2 s, and every start-up transition waits for the next poll too.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25",
}
CONTROLLER_FAILURE_LIMIT = 3  # Ray's default (-1) retries a worker group that cannot start forever
for _key, _value in RAY_ENV.items():
    os.environ.setdefault(_key, _value)
ERROR_FILE = "error.json"
# OSErrors a restart cannot fix: retrying would redo the epochs since the last checkpoint and fail the same way
UNFIXABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass
class TrainJob:
    """Everything a training run needs (it travels to the workers, pickled): the model's config, params.train as
    one TrainConfig, and where data, checkpoints and tracking live."""

    model: str  # registry name
    model_config: dict[str, Any]  # the model's resolved config; its epochs and batch_size are the run's
    data_dir: str  # absolute path of the prepared dataset
    run_name: str  # Ray Train run name (storage_path/run_name holds the checkpoints)
    storage_path: str  # absolute path or URI, shared by all nodes in cluster mode
    train: TrainConfig = field(default_factory=TrainConfig)  # params.train: workers, seed, checkpoints, precision
    tracking: dict[str, Any] = field(default_factory=dict)  # {"uri", "experiment", "run_id", "system_metrics_s"}: rank 0
    epoch_images: int | None = None  # images per epoch (all ranks); None: the whole train split
    fault: dict[str, Any] | None = None  # tests only: components.training.faults (the documented hook)
    validate: dict[str, Any] | None = None  # tuning: {"feature_net", "val_images", "fid_samples", "seed"}
    quality: dict[str, Any] | None = None  # train: {"feature_net", "n", "seed", "k"}: the per-epoch quality curve
    upstream: dict[str, str] = field(default_factory=dict)  # {model: exported file} of Family.needs

    @property
    def epochs(self) -> int:
        return self.model_config["epochs"]

    @property
    def batch_size(self) -> int:
        return self.model_config["batch_size"]


def check_local_cpus(address: str | None, num_cpus: int | None, need: str) -> None:
    """A run on the local Ray (no RAY_ADDRESS / ray.address) cannot use more CPUs than the machine has:
    Ray would oversubscribe them or wait forever for the worker group."""
    cpus = os.cpu_count() or 1
    if not (os.environ.get("RAY_ADDRESS") or address) and num_cpus and num_cpus > cpus:
        raise ConfigError(f"{need} = {num_cpus} CPUs, but this machine has {cpus}: lower them, or set ray.address "
                          "(or RAY_ADDRESS) to a cluster that has the CPUs")


def connect(address: str | None = None, num_cpus: int | None = None, root: Path | None = None,
            need: str = "train.workers x train.cpus_per_worker") -> None:
    """Join the cluster at RAY_ADDRESS / `address`, or the local Ray this run shares (ray_session):
    started by the first stage that needs it, joined in ~0.1 s by the next ones. A local run that needs
    more CPUs (`num_cpus`, from the params named by `need`) than the machine has is refused before Ray starts."""
    from components.training import ray_session

    check_local_cpus(address, num_cpus, need)
    address = os.environ.get("RAY_ADDRESS") or address
    cpus = os.cpu_count() or 1
    if address:
        ray_session.token_auth_if_available()  # before Ray is imported
    import ray

    if ray.is_initialized():
        return
    # The job's runtime env carries our Ray settings to controllers and workers on every node (on a
    # cluster they do not inherit this process's environment), and the project onto their import path.
    from components.tracking.mlflow_store import MLFLOW_ENV

    env_vars = {k: os.environ[k] for k in (*RAY_ENV, *MLFLOW_ENV) if k in os.environ}
    if root is not None:
        env_vars["PYTHONPATH"] = str(root)
    env = {"env_vars": env_vars}
    if not address:
        # Ray starts a job's workers through `bash -c "exec <interpreter> ..."` with the interpreter unquoted, so a
        # project (and its .venv) under a path with a space fails to launch any worker; py_executable is the
        # runtime env's documented place for that command, quoted here (a cluster's nodes keep their own).
        if shlex.quote(sys.executable) != sys.executable:
            env["py_executable"] = shlex.quote(sys.executable)
        address, auth = ray_session.ensure(cpus)
        # Ray's State API client (e.g. Ray Train's placement-group cleaner) finds its cluster by RAY_ADDRESS,
        # else by /tmp/ray/ray_current_cluster, which names whatever `ray start` ran last on this machine.
        env_vars["RAY_ADDRESS"] = address
        ray_session.use_auth(auth)
        with ray_session.loopback():
            ray.init(address=address, runtime_env=env, log_to_driver=True)
        return
    ray.init(address=address, runtime_env=env, log_to_driver=True)


def _worker(job_dict: dict) -> None:
    """A Ray Train worker: rank and device from Ray Train, resume from its latest checkpoint, report each
    epoch (with a checkpoint when one is due) through `ray.train.report`."""
    import ray.train
    import ray.train.torch

    job = TrainJob(**job_dict)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    state = None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            if (Path(d) / STATE_FILE).is_file():
                state = torch.load(Path(d) / STATE_FILE, map_location=device, weights_only=True)
    if state is not None and rank == 0:
        print(f"[{job.model}] resuming from checkpoint: epoch {state['epoch']}, step {state['step']}", flush=True)

    def report(metrics: dict, snapshot) -> None:
        with tempfile.TemporaryDirectory() as d:
            checkpoint = None
            if snapshot is not None and rank == 0:
                tmp = Path(d) / (STATE_FILE + ".tmp")
                torch.save(snapshot(), tmp)
                os.replace(tmp, Path(d) / STATE_FILE)  # atomic: a checkpoint is whole or absent
                checkpoint = ray.train.Checkpoint.from_directory(d)
            ray.train.report(dict(metrics), checkpoint=checkpoint)

    from components.training.loop import NonFiniteLossError

    if _verdict(job.run_name, take=False):  # an earlier attempt of this run met an error a restart cannot fix
        return
    try:
        _run_loop(job, rank, world, device, state, report)
    except OSError as err:
        if err.errno not in UNFIXABLE_ERRNOS:
            raise
        _record_verdict(job.run_name, f"{err.filename or job.storage_path}: {err.strerror or err} (rank {rank})")
        raise
    except NonFiniteLossError as err:
        with tempfile.TemporaryDirectory() as d:
            if rank == 0:
                (Path(d) / ERROR_FILE).write_text(json.dumps({"error": str(err)}))
            ray.train.report({"genzoo_error": str(err)}, checkpoint=ray.train.Checkpoint.from_directory(d) if rank == 0 else None)


def _verdict_name(run_name: str) -> str:
    return f"genzoo-verdict-{run_name}"


def _record_verdict(run_name: str, message: str) -> None:
    """Keep a run's unfixable error where the next attempt's workers and the driver find it without a disk: a
    small named actor (a full disk cannot take a marker checkpoint). The restarted worker group then returns at
    once instead of redoing epochs, and `fit` raises the message."""
    import ray

    @ray.remote(num_cpus=0)
    class Verdict:
        def __init__(self):
            self.message = None

        def set(self, message: str) -> None:
            self.message = self.message or message

        def get(self) -> str | None:
            return self.message

    actor = Verdict.options(name=_verdict_name(run_name), lifetime="detached", get_if_exists=True).remote()
    ray.get(actor.set.remote(message))


def _verdict(run_name: str, take: bool) -> str | None:
    """The recorded unfixable error of run `run_name`, or None; `take` also removes it (the driver, after a run)."""
    import ray

    try:
        actor = ray.get_actor(_verdict_name(run_name))
    except ValueError:  # none recorded: the common case, one lookup
        return None
    message = ray.get(actor.get.remote())
    if take:
        ray.kill(actor)
    return message


def run_in_process(job: TrainJob, report) -> None:
    """The same loop in this process, as a single worker (world size 1, no Ray Train run, no checkpoints):
    a one-worker Tune trial runs its training in its own actor this way, instead of starting a Train
    controller and a worker process. `report(metrics)` is called after every epoch; a non-finite loss raises."""
    cuda = torch.cuda.is_available() and job.train.use_gpu != "no"
    _run_loop(job, 0, 1, torch.device("cuda" if cuda else "cpu"), None, lambda metrics, _snapshot: report(metrics))


def _run_loop(job: TrainJob, rank: int, world: int, device: torch.device, state: dict | None, report) -> None:
    """Build the model and data stream of one rank and train; `report(metrics, snapshot)` ends each epoch
    (`snapshot` builds the checkpoint state when one is due, else None)."""
    from components.data import ShardStream, load_spec
    from components.models import MODELS, build
    from components.models.io import load_upstream
    from components.training.loop import LoopConfig, prepare_model, train

    torch.set_num_threads(job.train.cpus_per_worker)
    spec = load_spec(Path(job.data_dir), verify=False)  # the stream verifies the shards it reads
    torch.manual_seed(job.train.seed)
    model = prepare_model(build(job.model, job.model_config, spec, load_upstream(job.upstream)), device,
                          job.train.channels_last, job.train.compile)
    stream = ShardStream(Path(job.data_dir), spec, "train", job.batch_size, rank, world, job.train.seed,
                         epoch_images=job.epoch_images)
    tracker = None
    if rank == 0 and job.tracking.get("run_id"):
        from components.tracking import Tracker

        tracker = Tracker(job.tracking["uri"], job.tracking["experiment"])
    _record_placement(job, rank, world, device, tracker)
    callbacks = _Callbacks(job, rank, tracker, report)
    validate = None
    if job.validate is not None and rank == 0:
        from components.evaluation.validation import make_validator

        validate = make_validator(MODELS[job.model], Path(job.data_dir), spec, **job.validate)
    elif job.quality is not None and rank == 0:
        from components.evaluation.validation import make_quality

        validate = make_quality(MODELS[job.model], Path(job.data_dir), spec, **job.quality)
    loop_cfg = LoopConfig(epochs=job.epochs, train=job.train, rank=rank, world_size=world, device=str(device),
                          config={"model": job.model, "model_config": job.model_config, "seed": job.train.seed},
                          validate=validate)
    monitor = None
    if tracker is not None and job.tracking.get("system_metrics_s"):  # the machine rank 0 trains on, every few s
        monitor = tracker.system_metrics(job.tracking["run_id"], job.tracking["system_metrics_s"])
    try:
        train(model, stream.epoch, loop_cfg, callbacks, state)
    finally:
        if monitor is not None:
            monitor.finish()


def _record_placement(job: TrainJob, rank: int, world: int, device: torch.device, tracker) -> None:
    """Rank 0 prints and tags how many nodes the worker group spans (after a restart it may differ) and the
    precision it trains in."""
    import ray
    import torch.distributed as dist

    nodes = [ray.get_runtime_context().get_node_id()]
    if world > 1 and dist.is_initialized():
        nodes = [None] * world
        dist.all_gather_object(nodes, ray.get_runtime_context().get_node_id())
    if rank == 0:
        from components.training.loop import resolve_precision

        precision = resolve_precision(job.train.precision, device)
        print(f"[{job.model}] {world} worker(s) on {len(set(nodes))} node(s), {device.type}, {precision}"
              f"{' (train.precision: auto)' if job.train.precision == 'auto' else ''}", flush=True)
        if tracker is not None:
            tracker.set_tags(job.tracking["run_id"], {"genzoo.workers": world, "genzoo.nodes": len(set(nodes)),
                                                      "genzoo.precision": precision})


class _Callbacks:
    def __init__(self, job: TrainJob, rank: int, tracker, report):
        self.job, self.rank, self.tracker, self.report = job, rank, tracker, report

    def on_progress(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        txt = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"[{self.job.model}] epoch {epoch + 1}/{self.job.epochs} step {step} {txt}", flush=True)

    def on_epoch_end(self, epoch, metrics, history, state) -> None:
        if self.rank == 0:  # before the report: Tune may end a trial as soon as it has its last one
            txt = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k not in ("epoch", "step"))
            print(f"[{self.job.model}] epoch {epoch + 1}/{self.job.epochs} done: {txt}", flush=True)
            if self.tracker is not None:
                self.tracker.log_history(self.job.tracking["run_id"], history)
        run_dir = Path(self.job.storage_path) / self.job.run_name
        faults.before_report(self.job.fault, self.rank, epoch, run_dir)  # tests only: components.training.faults
        self.report(metrics, state)
        faults.after_report(self.job.fault, self.rank, epoch, run_dir)


def placement(setting: str, cluster_gpus: float) -> tuple[bool, str]:
    """(GPU workers?, torch.distributed backend) for train.use_gpu `setting` on a cluster with `cluster_gpus`
    GPUs: `auto` takes GPUs when the cluster has any, `yes` always (a cluster without them is refused by
    `_missing_resources`); NCCL between GPU workers, gloo between CPU workers. A worker's device is then the
    GPU Ray Train assigns it (ray.train.torch.get_device) or the CPU."""
    gpu = setting == "yes" or (setting == "auto" and cluster_gpus > 0)
    return gpu, "nccl" if gpu else "gloo"


def cluster_placement(setting: str) -> tuple[bool, str]:
    """placement() on the connected Ray cluster (its GPU count is asked only for `auto`)."""
    import ray

    return placement(setting, ray.cluster_resources().get("GPU", 0) if setting == "auto" else 0)


def uses_gpu(setting: str) -> bool:
    return cluster_placement(setting)[0]


def _trainer_class(tune_trial: bool):
    """TorchTrainer without the per-run processes GenZoo does not need (each a Python process importing
    Ray Train on a 2-core box; together ~14 s of a ~26 s start-up and shutdown; docs/performance.md, history):
    - Ray Data's callback starts a DatasetManager actor and ships Ray Data's context to every worker
      (which then imports ray.data), though GenZoo's workers read their shards themselves;
    - the placement-group cleaner (a detached actor that polls the State API, and whose stop waits up to
      12 s) removes the worker group's placement group when the controller dies abruptly. Placement groups
      are scoped to the job, so for a stage's run the job's end removes them anyway; a Tune trial's
      controller dies while the sweep's job lives on, so trials of several workers keep theirs (one-worker
      trials run in their Tune actor and start no Ray Train run at all, see tuning/ray_tune.py)."""
    from ray.train.torch import TorchTrainer
    from ray.train.v2._internal.callbacks import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    class GenZooTrainer(TorchTrainer):
        def _create_default_callbacks(self):
            drop = DatasetsCallback if tune_trial else DatasetsCallback | PlacementGroupCleanerCallback
            return [cb for cb in super()._create_default_callbacks() if not isinstance(cb, drop)]

    return GenZooTrainer


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


SOCKET_IFNAME = {"gloo": "GLOO_SOCKET_IFNAME", "nccl": "NCCL_SOCKET_IFNAME"}  # the interface a backend binds


def _sockets_on_loopback(backend: str) -> None:
    """Gloo binds its pair sockets, and NCCL its bootstrap sockets, to the address the host name resolves to (a
    LAN address on many machines) unless GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME names an interface: name the
    loopback one, unless the user chose. (NCCL's data path on one node is shared memory or NVLink.)"""
    import psutil

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.address == "127.0.0.1" for a in addrs):
            os.environ.setdefault(SOCKET_IFNAME[backend], name)
            return


def _store_dir() -> str:
    """A fresh 0700 directory for one worker group's FileStore, named after this (controller) process, under the
    user's private GenZoo directory; stores left by controllers that died without shutting down (an ASHA-stopped
    Tune trial, a killed stage) are removed first."""
    import psutil

    from components.training.ray_session import session_dir

    root = session_dir() / "pg"
    root.mkdir(mode=0o700, exist_ok=True)
    for d in root.iterdir():
        pid = d.name.split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root)


def _torch_config(backend: str):
    """Ray Train's TorchConfig, except that a worker group on one node joins its process group through a
    FileStore (a file in a 0700 temporary directory) instead of torch's TCPStore, which listens on every
    interface without authentication whatever MASTER_ADDR says, and gloo's and NCCL's sockets bind the loopback
    interface; a group spread over nodes rendezvous over TCP as Ray Train does (a cluster's network is the user's
    to secure)."""
    import ray
    from ray.train.torch import TorchConfig
    from ray.train.torch.config import (
        _set_torch_distributed_env_vars,
        _setup_torch_process_group,
        _TorchBackend,
    )

    class _FileStoreBackend(_TorchBackend):
        store_dir: str | None = None

        def on_start(self, worker_group, backend_config):
            if len(set(worker_group.execute(_node_id))) > 1:
                return super().on_start(worker_group, backend_config)
            self.store_dir = _store_dir()  # 0700: only this user's processes can join
            url = "file://" + os.path.join(self.store_dir, "store")
            worker_group.execute(_set_torch_distributed_env_vars)  # LOCAL_RANK & co., as Ray Train does
            worker_group.execute(_sockets_on_loopback, backend_config.backend)
            n = len(worker_group)
            ray.get([worker_group.execute_single_async(i, _setup_torch_process_group, backend=backend_config.backend,
                                                       world_rank=i, world_size=n, init_method=url,
                                                       timeout_s=backend_config.timeout_s) for i in range(n)])

        def on_shutdown(self, worker_group, backend_config):
            try:
                super().on_shutdown(worker_group, backend_config)
            finally:
                if self.store_dir:
                    shutil.rmtree(self.store_dir, ignore_errors=True)

    class _Config(TorchConfig):
        @property
        def backend_cls(self):
            return _FileStoreBackend

    return _Config(backend=backend)


def make_trainer(job: TrainJob, callbacks: list | None = None):
    """The TorchTrainer for a job (gloo on CPU, NCCL on GPU); `callbacks` e.g. Tune's report callback."""
    import ray
    import ray.train

    gpu, backend = cluster_placement(job.train.use_gpu)
    resources = {"CPU": job.train.cpus_per_worker, **({"GPU": 1} if gpu else {})}
    return _trainer_class(tune_trial=bool(callbacks))(
        _worker,
        train_loop_config=asdict(job),
        torch_config=_torch_config(backend),
        scaling_config=ray.train.ScalingConfig(num_workers=job.train.workers, use_gpu=gpu, resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=job.run_name,
            storage_path=job.storage_path,
            failure_config=ray.train.FailureConfig(max_failures=job.train.max_failures,
                                                   controller_failure_limit=CONTROLLER_FAILURE_LIMIT),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
        ),
    )


def fit(job: TrainJob) -> dict:
    """Run the job on Ray Train; returns the final training state (model, optimizers, epoch, step, history)."""
    trainer = make_trainer(job)
    _verdict(job.run_name, take=True)  # one left by a driver that died is not this run's
    try:
        result = trainer.fit()
    except Exception as err:  # TrainingFailedError and friends: keep the root cause, one line
        raise_verdict(job, err)
        text = str(err)
        if "MlflowException" in text and ("Max retries exceeded" in text or "Connection refused" in text):
            short = f"the MLflow tracking server {job.tracking.get('uri')} stopped answering"
        else:
            short = _missing_resources(job) or (text.strip().splitlines()[-1] if text.strip() else type(err).__name__)
        raise TrainingError(f"training {job.model} failed (restarts allowed: train.max_failures={job.train.max_failures}): {short}; "
                            "a rerun resumes from its last checkpoint") from err
    raise_verdict(job)
    if result.checkpoint is None:
        raise TrainingError(f"training {job.model} finished without a checkpoint")
    with result.checkpoint.as_directory() as d:
        if (Path(d) / ERROR_FILE).is_file():
            message = json.loads((Path(d) / ERROR_FILE).read_text())["error"]
            discard_run(job)  # a rerun must not resume from the diverged state
            raise TrainingError(f"training {job.model} stopped: {message}")
        return torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=True)


def raise_verdict(job: TrainJob, cause: BaseException | None = None) -> None:
    """Raise the run's recorded unfixable error (no space, read-only, permission denied), if any, as the one line
    that names the path and what to do, and where a rerun will resume."""
    message = _verdict(job.run_name, take=True)
    if message is None:
        return
    snapshot = Path(job.storage_path) / job.run_name / "checkpoint_manager_snapshot.json"
    try:
        epochs = [r.get("metrics", {}).get("epoch") for r in json.loads(snapshot.read_text()).get("checkpoint_results", [])]
        resume = f"a rerun resumes from epoch {max(e for e in epochs if e)}'s checkpoint"
    except (OSError, ValueError):  # no snapshot, or no checkpoint in it
        resume = "there is no checkpoint: a rerun starts afresh"
    raise TrainingError(f"training {job.model} stopped, not retried: {message}; free space (or fix the permissions) "
                        f"there and rerun; {resume}") from cause


def _missing_resources(job: TrainJob) -> str | None:
    """Why the worker group cannot be placed any more (e.g. a node was lost), or None if it could be."""
    import ray

    try:
        gpu = uses_gpu(job.train.use_gpu)
        have = ray.cluster_resources()
    except Exception:  # noqa: BLE001 - the cluster itself is gone: report Ray's own error instead
        return None
    need = {"CPU": job.train.workers * job.train.cpus_per_worker, **({"GPU": job.train.workers} if gpu else {})}
    short = {k: v for k, v in need.items() if have.get(k, 0) < v}
    if not short:
        return None
    has = ", ".join(f"{k} {have.get(k, 0):g}" for k in need)
    return (f"the cluster has {has} but {job.train.workers} workers need {', '.join(f'{k} {v:g}' for k, v in need.items())} "
            "(a node was lost?): add nodes or lower train.workers")


def discard_run(job: TrainJob) -> None:
    """Delete the run's checkpoints (local storage only)."""
    path = Path(job.storage_path) / job.run_name
    if "://" not in job.storage_path and path.exists():
        shutil.rmtree(path, ignore_errors=True)
