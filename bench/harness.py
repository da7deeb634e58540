"""Performance harness: GenZoo's Ray Train path side by side with a plain PyTorch loop, in one run.

For every model in the registry (or --models), on the same prepared dSprites data, batch size and threads:
  plain      a hand-written single-process loop over the model's phases, data already in memory as float
             tensors (measured before and after the Ray runs; the mean is the baseline);
  ray_1      GenZoo's path: `fit` on Ray Train with 1 worker streaming Parquet shards (ShardStream);
  ray_2      the same with 2 workers (DDP over gloo);
  data       the data path alone: ShardStream batches -> float tensors on the worker, no model.
Steady-state throughput (images/s) comes from the epochs after the first; start-up (Ray, worker group,
data, first-epoch warm-up, checkpoints) is reported apart: wall time minus the steady epochs' time.
On a GPU (or --device), GenZoo's loop in one process: fp32 vs bf16 autocast, eager vs torch.compile,
channels-last, and the share of time spent waiting for data. Then `dvc repro` with nothing changed, in
a temporary git repo that has run the pipeline once; with --main-job, the default main job in a clean
clone, timed by stage. --fixed-cost runs only the fixed-cost table: each stage's wall time against the work
it reports (training epochs, evaluation, ...; the rest is process start-up, imports, Ray, MLflow and dvc),
each train stage beside the plain loop on the same images and cores, per-family cost and the projection
to the whole zoo.

    uv run --frozen python bench/harness.py [--models vae dcgan] [--images 4096] [--epochs 3]
                  [--device auto|cuda|cpu|none] [--skip-dvc] [--main-job | --fixed-cost] [--out bench/results]

Results: <out>/harness.json and <out>/harness.md, or <out>/fixed_cost.json and .md (docs/performance.md
keeps the tables).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _project(root: Path, images: int, extra: dict | None = None) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(n_train=images, n_val=512, n_test=512)
    for key, value in (extra or {}).items():
        params[key] = {**params.get(key, {}), **value} if isinstance(value, dict) else value
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root / "params.yaml"


def plain_loop(name: str, cfg: dict, spec, data_dir: Path, images: int, epochs: int, threads: int,
               upstream_cfgs: dict[str, dict] | None = None) -> dict:
    """The baseline: one process, the model's phases stepped by hand over in-memory float batches. A model
    built on another (Family.needs) gets an untrained upstream of `upstream_cfgs[m]` (its config; the
    family's defaults when absent): the same network shapes, so the same cost per step."""
    import torch

    from components.data.shards import read_split, to_float
    from components.models import MODELS, build

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    upstream = {m: build(m, (upstream_cfgs or {}).get(m, {}), spec) for m in MODELS[name].needs}
    model = build(name, cfg, spec, upstream or None)
    optimizers = model.optimizers()
    phases = model.phases(optimizers)
    x, y = read_split(data_dir, spec, "train")
    xs = to_float(torch.as_tensor(x))  # (N, C, H, W) float in [0, 1], all in memory
    ys = torch.as_tensor(y)
    bs = cfg["batch_size"]
    params = list(model.parameters())
    epoch_times = []
    for _ in range(epochs):
        perm = torch.randperm(len(ys))
        batches = iter((xs[perm[i:i + bs]], ys[perm[i:i + bs]]) for i in range(0, images - bs + 1, bs))
        t0, seen, batch, done = time.perf_counter(), 0, None, False
        while not done:
            for phase in phases:
                for _ in range(phase.repeat):
                    if batch is None or phase.uses_batch:
                        batch = next(batches, None)
                        if batch is None:
                            done = True
                            break
                        seen += bs
                    trainable = {id(p) for p in phase.parameters}
                    for p in params:
                        p.requires_grad_(id(p) in trainable)
                    optimizers[phase.optimizer].zero_grad(set_to_none=True)
                    loss, _ = phase.loss(batch)
                    loss.backward()
                    optimizers[phase.optimizer].step()
                    if phase.after_step is not None:
                        phase.after_step()
                if done:
                    break
        epoch_times.append((time.perf_counter() - t0, seen))
    steady = epoch_times[1:] or epoch_times
    return {"images_per_s": sum(n for _, n in steady) / sum(t for t, _ in steady)}


def ray_path(name: str, cfg: dict, data_dir: Path, storage: Path, images: int, epochs: int, workers: int) -> dict:
    """GenZoo's path: `fit` on Ray Train (no MLflow, one checkpoint at the end)."""
    from components.config import TrainConfig
    from components.training.ray_train import TrainJob, fit

    job = TrainJob(model=name, model_config={**cfg, "epochs": epochs}, data_dir=str(data_dir), run_name=f"bench-{name}-{workers}w-{time.time_ns()}",
                   storage_path=str(storage), epoch_images=images,
                   train=TrainConfig(workers=workers, cpus_per_worker=1, use_gpu="no", seed=0, checkpoint_every=epochs,
                                     log_every=10**9, max_failures=0))
    t0 = time.perf_counter()
    state = fit(job)
    wall = time.perf_counter() - t0
    history = state["history"]
    steady = history[1:] or history
    steady_time = sum(h["epoch_time_s"] for h in steady)
    return {"images_per_s": statistics.fmean(h["images_per_s"] for h in steady), "wall_s": wall,
            "startup_s": wall - steady_time, "first_epoch_s": history[0]["epoch_time_s"], "steps": state["step"]}


def data_path(data_dir: Path, spec, batch_size: int, images: int, epochs: int) -> dict:
    """ShardStream alone, as a worker consumes it: batches of uint8 -> float tensors."""
    from components.data import ShardStream
    from components.data.shards import to_float

    stream = ShardStream(data_dir, spec, "train", batch_size, 0, 1, seed=0, epoch_images=images)
    t0, seen = time.perf_counter(), 0
    for epoch in range(epochs):
        for x, _ in stream.epoch(epoch):
            to_float(x)
            seen += x.shape[0]
    return {"images_per_s": seen / (time.perf_counter() - t0)}


GPU_VARIANTS = [(p, c, True) for p in ("fp32", "bf16") for c in (False, True)]  # (precision, compiled, NHWC)


def device_variants(name: str, cfg: dict, spec, data_dir: Path, images: int, epochs: int, device: str,
                    variants: list[tuple[str, bool, bool]] = GPU_VARIANTS) -> dict:
    """GenZoo's loop in one process on `device`, once per (precision, compiled, channels_last) variant (by
    default fp32 vs bf16 autocast x eager vs compiled, channels-last), and the share of each epoch spent waiting
    for data. Rows are keyed <precision>_<eager|compiled>[_nchw]."""
    import torch

    from components.config import TrainConfig
    from components.data import ShardStream
    from components.models import build
    from components.training.loop import LoopConfig, prepare_model, train

    class Timed:  # wraps the stream to time how long the loop waits for batches, per epoch
        def __init__(self, stream):
            self.stream, self.wait = stream, defaultdict(float)

        def epoch(self, e):
            it = self.stream.epoch(e)
            while True:
                t0 = time.perf_counter()
                batch = next(it, None)
                self.wait[e] += time.perf_counter() - t0
                if batch is None:
                    return
                yield batch

    class Quiet:
        def on_epoch_end(self, *args):
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        def on_progress(self, *args):
            pass

    rows = {}
    for precision, compiled, nhwc in variants:
        torch.manual_seed(0)
        model = prepare_model(build(name, cfg, spec), device, channels_last=nhwc, compile=compiled)
        stream = Timed(ShardStream(data_dir, spec, "train", cfg["batch_size"], 0, 1, seed=0, epoch_images=images))
        t0 = time.perf_counter()
        history = train(model, stream.epoch, LoopConfig(epochs=epochs, device=device,
                                                         train=TrainConfig(precision=precision, channels_last=nhwc)), Quiet())
        wall = time.perf_counter() - t0
        steady = history[1:]  # the first epoch pays for compiling and for reading shards cold
        wait_steady = sum(stream.wait[h["epoch"] - 1] for h in steady)  # history's epochs count from 1
        key = f"{precision}_{'compiled' if compiled else 'eager'}{'' if nhwc else '_nchw'}"
        rows[key] = {"images_per_s": statistics.fmean(h["images_per_s"] for h in steady),
                     "data_share": wait_steady / sum(h["epoch_time_s"] for h in steady),
                     "first_epoch_s": history[0]["epoch_time_s"], "wall_s": wall}
    return rows


def _run(cmd: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0, res.stdout + res.stderr


def _env(cwd: Path) -> dict:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(cwd))
    env.pop("VIRTUAL_ENV", None)
    return env


def dvc_noop(tmp: Path) -> dict:
    """A small project (VAE only, no tuning) reproduced once, then `dvc repro` with nothing changed."""
    root = tmp / "dvc"
    root.mkdir()
    for item in ("components", "pipelines"):
        shutil.copytree(REPO / item, root / item, ignore=shutil.ignore_patterns("__pycache__"))
    for item in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(REPO / item, root / item)
    from components.config import pipeline_entry

    vae = pipeline_entry("vae", "datasets/prepared")
    _project(root, 2048, {"pipeline": {"models": {"vae": vae}}, "tune": {"vae": {"num_samples": 0}},
                          "evaluate": {"feature_epochs": 1, "min_feature_accuracy": 0.3, "iw_samples": 10}})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["models"]["vae"]["epochs"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    env = _env(root)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "bench@genzoo"], ["git", "config", "user.name", "bench"],
                [sys.executable, "-m", "dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        _run(cmd, root, env)
    first, _ = _run([sys.executable, "-m", "dvc", "repro"], root, env)
    times = []
    for _ in range(3):
        t, out = _run([sys.executable, "-m", "dvc", "repro"], root, env)
        if "Running stage" in out:
            raise SystemExit(f"a no-change dvc repro ran stages:\n{out[-2000:]}")
        times.append(t)
    return {"first_repro_s": first, "noop_repro_s": min(times), "noop_repro_runs_s": times}


def main_job(tmp: Path, plain: dict[str, float] | None = None) -> dict:
    """The README's main job on a clean clone of this repo's HEAD, timed by stage (dependencies installed).
    Each stage records its wall time and its own work (.genzoo/timings/); `plain` ({model: images/s of the
    plain loop on all cores}) gives each train stage the time the same images take without Ray or MLflow."""
    clone = tmp / "main-job"
    _run(["git", "clone", "-q", str(REPO), str(clone)], tmp, dict(os.environ))
    env = _env(clone)
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=clone, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stages, current, t_start = {}, None, time.perf_counter()
    t_stage = t_start
    for line in proc.stdout:
        m = re.match(r"Running stage '([^']+)'", line)
        if m:
            now = time.perf_counter()
            if current:
                stages[current] = now - t_stage
            current, t_stage = m.group(1), now
            print(f"  [main job] {current} ...", flush=True)
    proc.wait()
    if current:
        stages[current] = time.perf_counter() - t_stage
    if proc.returncode != 0:
        raise SystemExit(f"the main job failed (exit {proc.returncode}) in {clone}")
    total = time.perf_counter() - t_start
    return {"total_s": total, "stages_s": stages, "fixed_cost": fixed_cost_table(clone, total, plain or {})}


def fixed_cost_table(clone: Path, total_s: float, plain: dict[str, float]) -> dict:
    """Per stage, from what each stage recorded (.genzoo/timings/<stage>.json): wall from process start
    to exit, work (the stage's own: training epochs, evaluation, ...), fixed = wall - work; `dvc` is the
    rest of the run (dvc's own start-up and bookkeeping between stages). Per family totals, each stage
    carrying an even share of dvc's time."""
    import csv

    rows, parts = {}, set()
    for f in sorted((clone / ".genzoo/timings").glob("*.json"), key=lambda f: json.loads(f.read_text())["finished"]):
        t = json.loads(f.read_text())
        row = {"wall_s": t["wall_s"], "work_s": t["work_s"], "fixed_s": t["wall_s"] - t["work_s"]}
        model = t["stage"].split("@")[1] if t["stage"].startswith("train@") else None
        curve = clone / "plots/train" / f"{model}.csv"
        if model in plain and curve.is_file():
            with open(curve) as fh:
                images = sum(float(r["images_per_s"]) * float(r["epoch_time_s"]) for r in csv.DictReader(fh))
            row["plain_s"] = images / plain[model]
        rows[t["stage"]] = row
        parts.update({t["stage"]} if t.get("part_of") else set())  # e.g. evaluate@vae inside the evaluate stage
    dvc = total_s - sum(r["wall_s"] for r in rows.values())
    per_stage = dvc / max(len(rows) - len(parts), 1)  # dvc's share of each stage process, so families and shared add up
    families = {}
    for stage, row in rows.items():
        share = 0.0 if stage in parts else per_stage
        if "@" in stage:
            fam = families.setdefault(stage.split("@")[1], {"wall_s": 0.0, "fixed_s": 0.0, "tuned": False})
            fam["wall_s"] += row["wall_s"] + share
            fam["fixed_s"] += row["fixed_s"] + share
            fam["tuned"] |= stage.startswith("tune@") and row["work_s"] > 0
    shared = sum(r["wall_s"] + per_stage for k, r in rows.items() if "@" not in k)
    rows["dvc"] = {"wall_s": dvc, "work_s": 0.0, "fixed_s": dvc}
    fixed = sum(r["fixed_s"] for r in rows.values())
    return {"stages": rows, "families": families, "shared_s": shared, "wall_s": total_s, "fixed_s": fixed,
            "fixed_share": fixed / max(total_s, 1e-9)}


def projection(fc: dict, zoo_models: int = 12) -> dict:
    """The whole zoo's main job projected from the landed families: every family still to come (11 families
    and the VQ-VAE prior = 12 trained models; the tuned ones, whose knobs the user named, have landed)
    costs what an untuned landed family costs on average, with the same fixed share."""
    fams = fc["families"]
    untuned = [f for f in fams.values() if not f["tuned"]] or list(fams.values())
    per = sum(f["wall_s"] for f in untuned) / len(untuned)
    per_fixed = sum(f["fixed_s"] for f in untuned) / len(untuned)
    missing = max(zoo_models - len(fams), 0)
    total = fc["wall_s"] + missing * per
    fixed = fc["fixed_s"] + missing * per_fixed
    return {"models": zoo_models, "missing": missing, "per_untuned_family_s": per, "total_s": total,
            "fixed_share": fixed / total}


def markdown(result: dict) -> str:
    lines = [f"Measured {result['date']} on {result['machine']}; `{result['command']}`; {result['images']} images per "
             f"epoch, {result['epochs']} epochs (steady state = epochs 2..{result['epochs']}), 1 thread per worker.", "",
             "| model | plain loop img/s | Ray Train 1 worker img/s | ratio (goal >= 0.95) | start-up s (1 worker) "
             "| 2 workers img/s | 2 vs 1 workers | data path img/s | data / consumption (goal >= 5) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["models"].items():
        lines.append(f"| {name} | {r['plain']['images_per_s']:.0f} | {r['ray_1']['images_per_s']:.0f} | "
                     f"**{r['ray_vs_plain']:.3f}** | {r['ray_1']['startup_s']:.1f} | {r['ray_2']['images_per_s']:.0f} | "
                     f"**{r['two_vs_one']:.2f}** | {r['data']['images_per_s']:.0f} | **{r['data_vs_consumption']:.1f}** |")
    if "device" in result:
        lines += ["", f"GenZoo's loop in one process on {result['device']['name']} (channels-last), images/s, and the share "
                      "of time spent waiting for data:", "",
                  "| model | fp32 eager | fp32 compiled | bf16 eager | bf16 compiled | bf16 vs fp32 (eager) "
                  "| compiled vs eager (bf16) | data share (bf16 compiled) |", "|---|---|---|---|---|---|---|---|"]
        for name, v in result["device"]["models"].items():
            lines.append(f"| {name} | {v['fp32_eager']['images_per_s']:.0f} | {v['fp32_compiled']['images_per_s']:.0f} | "
                         f"{v['bf16_eager']['images_per_s']:.0f} | {v['bf16_compiled']['images_per_s']:.0f} | "
                         f"**{v['bf16_eager']['images_per_s'] / v['fp32_eager']['images_per_s']:.2f}** | "
                         f"**{v['bf16_compiled']['images_per_s'] / v['bf16_eager']['images_per_s']:.2f}** | "
                         f"{v['bf16_compiled']['data_share']:.1%} |")
    if "dvc" in result:
        d = result["dvc"]
        lines += ["", f"No-change `dvc repro`: **{d['noop_repro_s']:.1f} s** (best of 3: "
                      f"{', '.join(f'{t:.1f}' for t in d['noop_repro_runs_s'])}; goal < 10 s); the first repro of that "
                      f"small project took {d['first_repro_s']:.0f} s."]
    if "main_job" in result:
        lines += ["", fixed_cost_markdown(result["main_job"])]
    return "\n".join(lines) + "\n"


def fixed_cost_markdown(m: dict) -> str:
    fc = m["fixed_cost"]
    lines = [f"Main job (default profile, clean clone): **{m['total_s'] / 60:.1f} min**, of which fixed cost "
             f"(process start-up, imports, Ray, MLflow, dvc) **{fc['fixed_share']:.0%}**.", "",
             "| stage | wall s | work s | fixed s | fixed % | plain loop s | wall / plain |", "|---|---|---|---|---|---|---|"]
    for stage, r in fc["stages"].items():
        plain = f"{r['plain_s']:.0f} | {r['wall_s'] / r['plain_s']:.1f}x" if "plain_s" in r else " | "
        lines.append(f"| {stage} | {r['wall_s']:.0f} | {r['work_s']:.0f} | {r['fixed_s']:.0f} | "
                     f"{r['fixed_s'] / max(r['wall_s'], 1e-9):.0%} | {plain} |")
    lines += ["", "| family | stages s | fixed s | tuned |", "|---|---|---|---|"]
    lines += [f"| {k} | {f['wall_s']:.0f} | {f['fixed_s']:.0f} | {'yes' if f['tuned'] else 'no'} |"
              for k, f in fc["families"].items()]
    p = projection(fc)
    lines += ["", f"Families and shared stages include dvc's time between stages, spread evenly over the stages. "
                  f"Shared (prepare, featurize, the start-up of evaluate, promote, report): {fc['shared_s']:.0f} s. Projected whole zoo "
                  f"({p['models']} trained models; {p['missing']} more at {p['per_untuned_family_s']:.0f} s each, the "
                  f"mean untuned family): **{p['total_s'] / 60:.1f} min**, fixed cost **{p['fixed_share']:.0%}**."]
    return "\n".join(lines)


def main() -> None:
    from components.models import MODELS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=list(MODELS), help="default: the default run's models "
                    "(--fixed-cost), those trained on the data (side by side)")
    ap.add_argument("--images", type=int, default=4096, help="images per epoch (all workers together)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per measurement; the first is warm-up")
    ap.add_argument("--skip-dvc", action="store_true", help="skip the no-change dvc repro measurement")
    ap.add_argument("--device", default="auto", help="precision/compile table on this device: auto (cuda when "
                    "present, else skipped), cuda, cuda:1, cpu, none")
    ap.add_argument("--main-job", action="store_true", help="also time the default main job by stage (~25 min)")
    ap.add_argument("--fixed-cost", action="store_true", help="only the fixed-cost table: the plain loop of each "
                    "model on all cores, then the default main job by stage, start-up vs work (~25 min)")
    ap.add_argument("--clone", type=Path, help="with --fixed-cost: a clone where the README's main-job command "
                    "already ran (its stages' .genzoo/timings), instead of running the main job here")
    ap.add_argument("--total-s", type=float, help="with --clone: the main job's wall time as measured around it")
    ap.add_argument("--out", default=str(REPO / "bench/results"))
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs: at least 2 (the first epoch is warm-up)")
    if args.models is None:
        args.models = [m for m, f in MODELS.items() if f.default_run and (args.fixed_cost or not f.needs)]
    built_on = [m for m in args.models if MODELS[m].needs]
    if built_on and not args.fixed_cost:
        ap.error(f"--models: {', '.join(built_on)} is built on another model's export; the Ray Train side by side "
                 "covers models trained on the data (use --fixed-cost for it, or leave it out)")

    from components.config import load_config
    from components.data import load_spec
    from components.data.sources import prepare
    from components.training.ray_train import connect

    tmp = Path(tempfile.mkdtemp(prefix="genzoo-harness-"))
    params = load_config(_project(tmp, args.images), models=args.models)
    print(f"[harness] preparing {args.images} dSprites images in {tmp}", flush=True)
    prepare(params)
    data_dir = params.path(params.data.out_dir)
    spec = load_spec(data_dir)
    if args.fixed_cost:
        return fixed_cost_main(args, params, spec, data_dir, tmp)
    result = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", "bench/harness.py", *sys.argv[1:]]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, no GPU",
              "images": args.images, "epochs": args.epochs, "models": {}}
    plain_first = {}
    for name in args.models:  # the plain loops run before Ray starts, and again after it stopped
        cfg = params.model_config_for(name).model_dump()
        print(f"[harness] {name}: plain PyTorch loop", flush=True)
        plain_first[name] = plain_loop(name, cfg, spec, data_dir, args.images, args.epochs, threads=1)
    t0 = time.perf_counter()
    connect(num_cpus=2, root=REPO)
    ray_init_s = time.perf_counter() - t0
    rows = {}
    for name in args.models:
        cfg = params.model_config_for(name).model_dump()
        rows[name] = {}
        for workers in (1, 2):
            print(f"[harness] {name}: Ray Train, {workers} worker(s)", flush=True)
            rows[name][f"ray_{workers}"] = ray_path(name, cfg, data_dir, tmp / "ray", args.images, args.epochs, workers)
        print(f"[harness] {name}: data path alone", flush=True)
        rows[name]["data"] = data_path(data_dir, spec, cfg["batch_size"], args.images, args.epochs)
    import ray

    ray.shutdown()
    for name in args.models:
        cfg = params.model_config_for(name).model_dump()
        again = plain_loop(name, cfg, spec, data_dir, args.images, args.epochs, threads=1)
        r = rows[name]
        r["plain"] = {"images_per_s": (plain_first[name]["images_per_s"] + again["images_per_s"]) / 2,
                      "runs": [plain_first[name]["images_per_s"], again["images_per_s"]]}
        r["ray_vs_plain"] = r["ray_1"]["images_per_s"] / r["plain"]["images_per_s"]
        r["two_vs_one"] = r["ray_2"]["images_per_s"] / r["ray_1"]["images_per_s"]
        r["data_vs_consumption"] = r["data"]["images_per_s"] / r["ray_1"]["images_per_s"]
        result["models"][name] = r
    result["ray_init_s"] = ray_init_s
    import torch

    device = ("cuda" if torch.cuda.is_available() else "none") if args.device == "auto" else args.device
    if device != "none":
        label = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"{platform.machine()} CPU"
        result["device"] = {"name": label, "models": {}}
        for name in args.models:
            print(f"[harness] {name}: fp32/bf16 x eager/compiled on {device}", flush=True)
            cfg = params.model_config_for(name).model_dump()
            result["device"]["models"][name] = device_variants(name, cfg, spec, data_dir, args.images, args.epochs, device)
    if not args.skip_dvc:
        print("[harness] dvc repro with nothing changed", flush=True)
        result["dvc"] = dvc_noop(tmp)
    if args.main_job:
        print("[harness] the default main job, by stage", flush=True)
        result["main_job"] = main_job(tmp)  # the plain column needs the all-cores loop: --fixed-cost
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "harness.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (out / "harness.md").write_text(table)
    print("\n" + table + f"\nRay start-up (ray.init, local): {ray_init_s:.1f} s. Written: {out / 'harness.json'}, "
          f"{out / 'harness.md'}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


def fixed_cost_main(args, params, spec, data_dir: Path, tmp: Path) -> None:
    """--fixed-cost: the plain loop on as many threads as the run's Ray Train workers use together, then
    the main job by stage; writes <out>/fixed_cost.json and .md."""
    from components.models import MODELS

    threads = params.train.workers * params.train.cpus_per_worker
    plain = {}
    for name in args.models:
        print(f"[harness] {name}: plain PyTorch loop, {threads} threads", flush=True)
        cfg = params.model_config_for(name).model_dump()
        ups = {m: params.model_config_for(m).model_dump() for m in MODELS[name].needs}
        plain[name] = plain_loop(name, cfg, spec, data_dir, args.images, 2, threads=threads, upstream_cfgs=ups)["images_per_s"]
    if args.clone:
        if not args.total_s:
            raise SystemExit("--clone needs --total-s: the main job's wall time")
        job = {"total_s": args.total_s, "fixed_cost": fixed_cost_table(args.clone, args.total_s, plain)}
    else:
        print("[harness] the default main job, by stage", flush=True)
        job = main_job(tmp, plain)
    result = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", "bench/harness.py", *sys.argv[1:]]),
              "plain_images_per_s": plain, "plain_threads": threads, "main_job": job}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fixed_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    table = fixed_cost_markdown(result["main_job"])
    (out / "fixed_cost.md").write_text(table + "\n")
    print("\n" + table + f"\nWritten: {out / 'fixed_cost.json'}, {out / 'fixed_cost.md'}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
