"""Where a Ray Train worker's time goes, against the plain loop (the harness's ray_vs_plain gap).

One run, side by side: the plain loop with no Ray; the plain loop with a local Ray up and idle; then
GenZoo's 1-worker Ray Train run, during whose steady state it samples (a) the CPU used by every process
on the machine (psutil) and (b) the worker's Python stacks with py-spy (all threads, 100 Hz). Prints
the summary; raw py-spy samples go to <out>/profile_<model>.txt.

    uv run --frozen python bench/profile_worker.py [--model dcgan] [--images 4096] [--seconds 15]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def cpu_by_process(seconds: float) -> list[tuple[str, float]]:
    """CPU-seconds per process over `seconds`, as a share of one core, largest first."""
    import psutil

    def snap():
        out = {}
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                t = p.cpu_times()
                out[p.pid] = (" ".join(p.info["cmdline"] or [])[:60] or str(p.pid), t.user + t.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return out

    a = snap()
    time.sleep(seconds)
    b = snap()
    rows = [(b[pid][0], (b[pid][1] - a[pid][1]) / seconds) for pid in b if pid in a]
    return sorted((r for r in rows if r[1] > 0.01), key=lambda r: -r[1])


def summarize_pyspy(raw: Path) -> list[tuple[str, float]]:
    """Share of samples per (thread, innermost GenZoo/torch frame) from py-spy's raw (collapsed) output."""
    counts: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        n = int(n)
        total += n
        ours = [f for f in frames if "components/" in f or "torch/" in f]
        key = f"{frames[0]} :: {(ours[-1] if ours else frames[-1]).split(' (')[0]}"
        counts[key] += n
    return [(k, v / max(total, 1)) for k, v in counts.most_common(12)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--out", default=str(REPO / "bench/results"))
    args = ap.parse_args()

    import harness
    import psutil
    import ray

    from components.config import load_config
    from components.data import load_spec
    from components.data.sources import prepare
    from components.training.ray_train import connect

    tmp = Path(tempfile.mkdtemp(prefix="genzoo-profile-"))
    params = load_config(harness._project(tmp, args.images), models=[args.model])
    prepare(params)
    data_dir = params.path(params.data.out_dir)
    spec = load_spec(data_dir)
    cfg = params.model_config_for(args.model).model_dump()
    plain_alone = harness.plain_loop(args.model, cfg, spec, data_dir, args.images, 3, threads=1)["images_per_s"]
    connect(num_cpus=2, root=REPO)
    time.sleep(5)
    plain_ray_idle = harness.plain_loop(args.model, cfg, spec, data_dir, args.images, 3, threads=1)["images_per_s"]
    idle_cpu = cpu_by_process(5)

    box: dict = {}
    epochs = 2 + int(args.seconds * 1.5 * 500 / args.images) + 2  # enough epochs to cover the sampling window
    run = threading.Thread(target=lambda: box.update(r=harness.ray_path(args.model, cfg, data_dir, tmp / "ray",
                                                                        args.images, epochs, 1)))
    run.start()
    worker = None
    while worker is None and run.is_alive():
        worker = next((p for p in psutil.process_iter(["cmdline"])
                       if "RayTrainWorker" in " ".join(p.info["cmdline"] or [])), None)
        time.sleep(0.5)
    time.sleep(15)  # past start-up and the first epoch
    raw = Path(args.out) / f"profile_{args.model}.txt"
    raw.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([shutil.which("py-spy") or "py-spy", "record", "-p", str(worker.pid), "-d", str(int(args.seconds)),
                            "-r", "100", "--threads", "-f", "raw", "-o", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    busy_cpu = cpu_by_process(args.seconds)
    spy.wait()
    run.join()
    ray.shutdown()
    print(f"\n{args.model}: plain loop {plain_alone:.0f} img/s alone, {plain_ray_idle:.0f} img/s with an idle local "
          f"Ray ({plain_ray_idle / plain_alone:.2f}x); Ray Train 1 worker {box['r']['images_per_s']:.0f} img/s "
          f"({box['r']['images_per_s'] / plain_alone:.2f}x the plain loop alone)")
    print("\nCPU by process, idle Ray (cores):")
    for name, c in idle_cpu[:6]:
        print(f"  {c:5.2f}  {name}")
    print("\nCPU by process while the worker trains (cores):")
    for name, c in busy_cpu[:8]:
        print(f"  {c:5.2f}  {name}")
    if raw.is_file():
        print(f"\npy-spy, worker {worker.pid}, share of samples by thread :: innermost GenZoo/torch frame:")
        for key, share in summarize_pyspy(raw):
            print(f"  {share:6.1%}  {key[:150]}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
