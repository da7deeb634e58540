"""Benchmark: evaluation of 10,000 generated samples against 10,000 held-out real images, by phase.

Prepares dSprites with a 10,000-image test split, trains the feature network (featurize), and times
evaluate_model for a DCGAN (sample metrics) and a VAE (also the ELBO and IWAE bounds). Model weights
are untrained: the cost of evaluation does not depend on them.

    uv run python bench/eval_10k.py [--n 10000] [--iw-samples 100] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--iw-samples", type=int, default=100)
    ap.add_argument("--out", default=str(REPO / "bench/results"))
    args = ap.parse_args()

    import torch

    from components.config import load_config
    from components.data import load_spec
    from components.data.sources import prepare
    from components.evaluation.features import featurize
    from components.evaluation.run import evaluate_model
    from components.models import build
    from components.models.io import export_model

    root = Path(tempfile.mkdtemp(prefix="genzoo-bench-eval-"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(n_test=args.n)
    params["evaluate"].update(n_samples=args.n, iw_samples=args.iw_samples)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(root / "params.yaml", models=["vae", "dcgan"])
    timings = {}
    t0 = time.perf_counter()
    prepare(cfg)
    timings["prepare_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    featurize(cfg, root / "features", log=lambda *_: None)
    timings["featurize_s"] = time.perf_counter() - t0
    spec = load_spec(root / "datasets/prepared")
    for name in ("dcgan", "vae"):
        torch.manual_seed(0)
        path = export_model(root / f"models/{name}/model.pt", name, build(name, cfg.model_config_for(name), spec))
        t0 = time.perf_counter()
        metrics = evaluate_model(cfg, name, path, root / f"evaluation/{name}", root / "features", log=print)
        timings[f"evaluate_{name}_s"] = time.perf_counter() - t0
        print(f"{name}: {timings[f'evaluate_{name}_s']:.1f}s, fid {metrics['fid']:.1f}", flush=True)
    result = {"n_real": args.n, "n_fake": args.n, "iw_samples": args.iw_samples, "torch_threads": torch.get_num_threads(),
              "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores",
              **{k: round(v, 1) for k, v in timings.items()}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_10k.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
