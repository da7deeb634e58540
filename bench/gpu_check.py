"""One-command check of the GPU profile: `uv run python bench/gpu_check.py` on a machine with an NVIDIA GPU.

For each model of the default run, with the settings `-S profile=gpu` gives it (params.yaml `profiles.gpu`:
widths, batch sizes, bf16 autocast, torch.compile, channels-last), it trains GenZoo's loop in one process on
synthetic batches of the dataset's shape and prints the images per second of the steady steps and the share
of the GPU's dense bf16 peak they reach. FLOPs per step are counted once, eagerly, with
torch.utils.flop_counter (matmuls, convolutions and attention, forward and backward). No data preparation,
Ray or MLflow: it checks that the profile's code paths run on the GPU and how well they use it, before a
whole `dvc exp run -S profile=gpu`.

    uv run python bench/gpu_check.py [--models vae dcgan] [--steps 30] [--peak-tflops 989]
                                     [--device cuda|cpu] [--tiny] [--out bench/results/gpu_check.json]

On a machine without a GPU it runs the same paths on the CPU (bf16 autocast on the CPU, torch.compile with
the CPU backend); the suite does that at --tiny size, so the first GPU run meets code that has run before.
Expected output on one GPU (the figures depend on the GPU; an H100/H200 reaches a few per cent of its
989 TFLOP/s peak on these small 32x32 networks, where kernel launches and memory traffic dominate):

    gpu check on cuda (NVIDIA H200), bf16 peak 989 TFLOP/s, profile gpu: bf16, compile, channels-last
    model         batch   images/s   GFLOP/image   TFLOP/s   of peak
    vae            1024     ......          ....       ...      .. %
    ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# dense bf16 tensor-core peaks (TFLOP/s) of common data-centre GPUs, by a substring of the device name
PEAKS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAKS.items():  # longest names first where they overlap ("H100 PCIe" before "H100")
        if key in device_name:
            return value
    return None


def spec_for(params):
    """The DatasetSpec the models are built for: dSprites' shape at data.resolution (no data is read)."""
    from components.data import DatasetSpec

    return DatasetSpec(name="dsprites", resolution=params.data.resolution, channels=1,
                       classes=["square", "ellipse", "heart"], binary=True, counts={}, shards={})


def synthetic_batches(spec, batch: int, steps: int, seed: int = 0):
    """batches(epoch): `steps` (uint8 images, labels) batches of the spec's shape, binary like dSprites."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, *spec.shape, generator=g) < 0.1).to(torch.uint8) * 255
    y = torch.randint(0, spec.num_classes, (batch,), generator=g)

    def batches(epoch: int):
        for _ in range(steps):
            yield x, y

    return batches


def check(name: str, params, device: str, steps: int, warmup: int) -> dict:
    """Train `warmup` steps (compilation, autotuning), then `steps` timed ones; count one step's FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from components.models import MODELS, build
    from components.training.loop import LoopConfig, prepare_model, train

    spec = spec_for(params)
    cfg = params.model_config_for(name).model_dump()
    batch = cfg["batch_size"]
    upstream = {m: build(m, params.model_config_for(m), spec).to(device) for m in MODELS[name].needs} or None

    class Quiet:
        def on_epoch_end(self, *args):
            pass

        def on_progress(self, *args):
            pass

    # FLOPs of one step, counted eagerly in fp32 (the count does not depend on precision or compilation)
    torch.manual_seed(0)
    eager = prepare_model(build(name, cfg, spec, upstream), device)
    with FlopCounterMode(display=False) as counter:
        train(eager, synthetic_batches(spec, batch, 1), LoopConfig(epochs=1, device=device), Quiet())
    flops_per_step = counter.get_total_flops()
    del eager

    torch.manual_seed(0)
    settings = params.train
    model = prepare_model(build(name, cfg, spec, upstream), device, settings.channels_last, settings.compile)
    loop = LoopConfig(epochs=1, device=device, train=settings.model_copy(update={"log_every": 10**9}))
    train(model, synthetic_batches(spec, batch, warmup), loop, Quiet())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    train(model, synthetic_batches(spec, batch, steps), loop, Quiet())
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"model": name, "batch": batch, "images_per_s": batch * steps / seconds,
            "gflop_per_image": flops_per_step / batch / 1e9, "tflop_per_s": flops_per_step * steps / seconds / 1e12}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None, help="default: the default run's models")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per model (after --warmup steps)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default=None, help="cuda (default when there is one) or cpu")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (default: a table)")
    ap.add_argument("--tiny", action="store_true", help="tiny widths and batch 8: the suite's CPU run of the same paths")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/gpu_check.json")
    args = ap.parse_args(argv)

    import torch

    from components.config import load_config
    from components.models import MODELS

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)")
    params = load_config(REPO / "params.yaml")
    names = args.models or [m for m in params.pipeline.models if MODELS[m].default_run]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise SystemExit(f"--models: unknown {', '.join(unknown)}; allowed: {', '.join(sorted(MODELS))}")
    params = gpu_params(params, names, args.tiny, device)
    device_name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    peak = args.peak_tflops or (peak_tflops(device_name) if device.startswith("cuda") else None)
    t = params.train
    print(f"gpu check on {device} ({device_name}), bf16 peak {f'{peak:g} TFLOP/s' if peak else 'unknown'}, "
          f"profile=gpu: {t.precision}{', compile' if t.compile else ''}"
          f"{', channels-last' if t.channels_last else ''}", flush=True)
    print(f"{'model':<13} {'batch':>6} {'images/s':>10} {'GFLOP/image':>12} {'TFLOP/s':>9} {'of peak':>8}", flush=True)
    rows = []
    for name in names:
        row = check(name, params, device, args.steps, args.warmup)
        row["of_peak"] = row["tflop_per_s"] / peak if peak else None
        share = f"{row['of_peak']:.1%}" if peak else "-"
        print(f"{name:<13} {row['batch']:>6} {row['images_per_s']:>10.0f} {row['gflop_per_image']:>12.3f} "
              f"{row['tflop_per_s']:>9.3f} {share:>8}", flush=True)
        rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": device, "device_name": device_name, "peak_tflops": peak,
                                    "train": t.model_dump(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return rows


def gpu_params(params, names: list[str], tiny: bool, device: str):
    """params with `profiles.gpu` laid over them; --tiny: each family's tiny widths and batch 8 (the suite);
    on the CPU, use_gpu no (the rest of the profile, bf16, compile and channels-last, runs there too)."""
    from components.config import Params, apply_profile
    from components.models import MODELS

    raw = apply_profile({**params.model_dump(), "profile": "gpu"})
    if tiny:
        for name in names:
            for m in (name, *MODELS[name].needs):
                raw["models"][m] = {**raw["models"].get(m, {}), **MODELS[m].tiny, "batch_size": 8}
    if not device.startswith("cuda"):
        raw["train"] = {**raw["train"], "use_gpu": "no"}
    out = Params(**raw)
    out._root = params.root
    return out


if __name__ == "__main__":
    main()
