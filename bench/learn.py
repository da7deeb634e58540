"""Named run: one family's quality curve at laptop scale, in one process (no Ray, no MLflow), with params
overrides, so settings can be compared side by side before they go into params.yaml.

    uv run python bench/learn.py wgan_gp --epochs 6 --set lr=0.0002 n_critic=2 [--threads 2] [--grids 3 6]
    uv run python bench/learn.py pixelcnn --epochs 8 --sample-epochs 2 4 8   # sample metrics at 1x, 2x, 4x

Needs the prepared data and the feature classifier (`dvc repro featurize`). Prints a line per epoch (images
seen, wall seconds, the family's quality keys) and appends a JSON line to bench/results/learn.jsonl.
The gradient of a 2-worker DDP step of batch b equals one step of batch 2b here (batch norm statistics aside),
so --batch-scale 2 (the default) matches the main job's 2 workers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def settings(model: str, overrides: list[str], epochs: int | None, tuned: bool = False):
    """(params, the model's config as a dict with `key=value` overrides (YAML values) and epochs applied, the
    prepared data directory, its dataset spec). `tuned`: start from what the main job's train stage trains, the
    values of tuned/<model>.json (its sweep's pick) over params.yaml's."""
    import yaml

    from components.config import load_config
    from components.data import load_spec
    from components.training.job import tuned_overrides

    params = load_config(REPO / "params.yaml")
    cfg = params.model_config_for(model).model_dump()
    if tuned:
        cfg.update(tuned_overrides(params.path(f"tuned/{model}.json")))
    for kv in overrides:
        k, v = kv.split("=", 1)
        cfg[k] = yaml.safe_load(v)
    if epochs:
        cfg["epochs"] = epochs
    data = params.path(params.data.out_dir)
    return params, cfg, data, load_spec(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], help="key=value overrides of models.<model>")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tuned", action="store_true",
                    help="apply tuned/<model>.json (the main job's sweep pick) before --set, as the train stage does")
    ap.add_argument("--batch-scale", type=int, default=2, help="workers the run stands for (batch x this)")
    ap.add_argument("--quality-images", type=int, default=500)
    ap.add_argument("--tag", default="")
    ap.add_argument("--precision", choices=["fp32", "bf16", "auto"], default=None,
                    help="train.precision for this run; default: params.yaml's (auto: bf16 on a CPU with AVX512-BF16)")
    ap.add_argument("--seed", type=int, default=None,
                    help="train.seed for this run (model init, data order, noise); default: params.yaml's")
    ap.add_argument("--export", default=None,
                    help="after training, write the model to this path as the train stage exports it (for probes)")
    ap.add_argument("--final-samples", type=int, default=0,
                    help="after training, sample metrics at this N (also for families whose curve has none: PixelCNN)")
    ap.add_argument("--sample-epochs", nargs="*", type=int, default=[],
                    help="epochs after which to add sample metrics at --quality-images to the curve, for families "
                         "whose per-epoch curve has none (PixelCNN, the VQ-VAE prior): e.g. the 1x, 2x, 4x budgets")
    ap.add_argument("--grids", nargs="*", type=int, default=[],
                    help="epochs after which to save a grid of 64 seeded samples to bench/results/<model><tag>-e<E>.png")
    args = ap.parse_args()
    if args.quality_images < 1:
        ap.error(f"--quality-images: {args.quality_images}; must be >= 1 (the quality curve is what this bench records)")

    import torch

    from components.data import ShardStream
    from components.evaluation.validation import make_quality
    from components.models import MODELS, build
    from components.training.loop import LoopConfig, resolve_precision, train

    torch.set_num_threads(args.threads)
    params, cfg, data, spec = settings(args.model, args.set, args.epochs, args.tuned)
    family = MODELS[args.model]
    seed = params.train.seed if args.seed is None else args.seed
    torch.manual_seed(seed)
    upstream = None
    if family.needs:
        from components.models.io import load_exported

        upstream = {m: load_exported(params.path(f"models/{m}/model.pt"))[1] for m in family.needs}
    model = build(args.model, cfg, spec, upstream)
    stream = ShardStream(data, spec, "train", cfg["batch_size"] * args.batch_scale, 0, 1, seed)
    def quality_check(n: int, samples: bool = False):
        """make_quality at n images; `samples`: with sample metrics even where the family's curve leaves them out
        (autoregressive sampling is slow)."""
        from dataclasses import replace

        fam = replace(family, curve_samples=True) if samples else family
        return make_quality(fam, data, spec, str(params.path("features/classifier.pt")), n, params.evaluate.seed,
                            params.evaluate.pr_k)

    quality = quality_check(args.quality_images)
    check_samples = quality_check(args.quality_images, samples=True) if args.sample_epochs else None
    code_g = None  # G's side of the continuous codes: evaluate's code_sample_factor_corr, per epoch and at the end
    if family.capabilities.codes and params.path("features/regressor.pt").is_file():
        from components.evaluation.conditional import code_sample_factor_corr
        from components.evaluation.factors import load_regressor

        reg = load_regressor(params.path("features/regressor.pt"))

        def code_g(m) -> dict:
            return code_sample_factor_corr(m, reg, 2000, params.evaluate.seed)
    sources = None  # a translation model's grid: validation images of domain A, read once
    if args.grids and family.capabilities.translation:
        from components.data.shards import read_split

        x, y = read_split(data, spec, "val", limit=2000)
        sources = model.domains(torch.from_numpy(x).float() / 255, torch.from_numpy(y))["a"][0]
    t0 = time.perf_counter()

    class Print:
        def on_progress(self, *a):
            pass

        def on_epoch_end(self, epoch, metrics, history, state):
            if check_samples is not None and epoch + 1 in args.sample_epochs:  # metrics is history's last entry
                was = model.training
                metrics.update({k: v for k, v in check_samples(model).items() if k not in metrics})
                model.train(was)
            if code_g is not None and (value := code_g(model).get("code_sample_factor_corr_best")) is not None:
                metrics["q_code_sample_factor_corr"] = value
            keep = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("q_", "val_")) and "floor" not in k}
            print(f"[{args.model}{args.tag}] epoch {epoch + 1} images {metrics['images_seen']} "
                  f"wall {time.perf_counter() - t0:.0f}s {keep}", flush=True)
            if epoch + 1 in args.grids:  # look at the samples, not only the numbers
                from components.evaluation.figures import save_grid
                from components.evaluation.sampling import generate

                labels = torch.arange(64) % spec.num_classes if family.capabilities.labels else None
                was = model.training
                model.eval()
                path = REPO / f"bench/results/{args.model}{args.tag}-e{epoch + 1}.png"
                if family.capabilities.translation:  # rows of 8 validation images of domain A, then their a2b
                    a = sources[:32]
                    with torch.no_grad():
                        out = model.translate(a.to(model.device), "a2b").cpu()
                    save_grid(torch.stack([a.view(4, 8, *a.shape[1:]), out.view(4, 8, *a.shape[1:])], 1).flatten(0, 2),
                              path, nrow=8)  # (4, 2, 8, C, H, W): source rows above their translations
                else:
                    save_grid(generate(model, 64, params.evaluate.seed, labels=labels), path, nrow=8)
                model.train(was)
                print(f"[{args.model}{args.tag}] samples after epoch {epoch + 1}: {path}", flush=True)

    overrides = {"log_every": 10**9, "seed": seed, **({"precision": args.precision} if args.precision else {})}
    loop_train = params.train.model_copy(update=overrides)  # the loop reseeds each epoch's noise from train.seed
    history = train(model, stream.epoch, LoopConfig(epochs=cfg["epochs"], train=loop_train, validate=quality), Print())
    final = {}
    if args.final_samples:  # the sample metrics a family's curve leaves out, at a larger N
        model.eval()
        final = {k: round(v, 4) for k, v in quality_check(args.final_samples, samples=True)(model).items()
                 if v is not None}
        print(f"[{args.model}{args.tag}] after training, N = {args.final_samples}: {final}", flush=True)
    regressor_file = params.path("features/regressor.pt")
    if family.capabilities.translation and regressor_file.is_file():  # what evaluate reads: factors kept, per direction
        from components.data.shards import read_factors, read_split
        from components.evaluation.factors import load_regressor
        from components.evaluation.features import load_feature_net
        from components.evaluation.translation import translation_metrics

        x, y = read_split(data, spec, "test")
        m, _ = translation_metrics(model, x, y, read_factors(data, spec, "test"),
                                   load_feature_net(params.path("features/classifier.pt"))[0], load_regressor(regressor_file))
        final.update({f"{d}_{k}": round(v, 4) for d, t in m["translation"].items() for k, v in t.items() if v is not None})
        final.update({k: round(v, 4) for k, v in m.items() if k.startswith("regressor_floor_")})
        print(f"[{args.model}{args.tag}] after training, test split: {final}", flush=True)
    if family.capabilities.codes:  # what evaluate reads: Q's codes on test images against the known factors
        from components.data.shards import read_factors, read_split
        from components.evaluation.conditional import code_metrics

        n = params.evaluate.n_samples  # capped at the test split, as in evaluate
        x, y = read_split(data, spec, "test", limit=n)
        m = code_metrics(model, x, y, read_factors(data, spec, "test", n))
        final.update({"code_accuracy": round(m["code_accuracy"], 4),
                      **{f"{c}_{m[f'code_{c}_best_factor']}": round(max(r.values()), 4)
                         for c, r in m["code_factor_corr"].items() if r}})
        if code_g is not None:  # G's side: do the codes move the factors of its samples?
            final.update({f"samples_{c}_{max(r, key=r.get)}": round(max(r.values()), 4)
                          for c, r in code_g(model).get("code_sample_factor_corr", {}).items()})
        print(f"[{args.model}{args.tag}] after training, test split, N = {len(x)}: {final}", flush=True)
    if args.export:
        from components.models.io import export_model

        print(f"[{args.model}{args.tag}] exported to {export_model(Path(args.export), args.model, model)}", flush=True)
    out = REPO / "bench/results/learn.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps({"model": args.model, "set": args.set, "tag": args.tag, "seed": seed,
                            "precision": resolve_precision(loop_train.precision, "cpu"), "config": cfg,
                            "wall_s": time.perf_counter() - t0, "history": history, "final": final}) + "\n")


if __name__ == "__main__":
    main()
