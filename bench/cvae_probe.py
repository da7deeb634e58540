"""Probe: where a trained (C)VAE keeps the shape, in z or in the label, and what its decoder can draw.

    uv run python bench/cvae_probe.py cvae --epochs 48 --set batch_size=32 kl_weight=0.5 [--threads 1]

Trains the family in one process as bench/learn.py does (same loop, data and overrides, batch x 2 for the
main job's two workers), then asks the feature classifier (features/classifier.pt) about 2,000 test images:
  reconstructions   decode(mu(x, y), y): classified as their shape? (also thresholded at 0.5)
  label swaps       decode(mu(x, y), y') for each y': does the requested label change the shapes drawn?
  prior samples     decode(z ~ N(0, I), y): conditional accuracy, as the evaluate stage measures it
  ex-post prior     decode(z ~ a Gaussian fitted per class to the training images' posterior samples, y)
                    (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders", ex-post density
                    estimation), diagonal and full covariance: is the class a region of z?
Prints class histograms (square / ellipse / heart) and accuracies, saves grids to bench/results/<model><tag>-*.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["vae", "cvae"])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], help="key=value overrides of models.<model>")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-scale", type=int, default=2, help="workers the run stands for (batch x this)")
    ap.add_argument("--tag", default="_probe")
    args = ap.parse_args()

    import torch
    from learn import settings

    from components.data import ShardStream
    from components.data.shards import read_split
    from components.evaluation.features import embed, load_feature_net
    from components.evaluation.figures import save_grid
    from components.models import build
    from components.training.loop import LoopConfig, train

    torch.set_num_threads(args.threads)
    params, cfg, data, spec = settings(args.model, args.set, args.epochs)
    torch.manual_seed(params.train.seed)
    model = build(args.model, cfg, spec)
    stream = ShardStream(data, spec, "train", cfg["batch_size"] * args.batch_scale, 0, 1, params.train.seed)
    t0 = time.perf_counter()

    class Print:
        def on_progress(self, *a):
            pass

        def on_epoch_end(self, epoch, metrics, history, state):
            extra = "".join(f" {k} {v:.3f}" for k, v in metrics.items() if k not in ("neg_elbo", "kl", "rec"))
            print(f"[{args.model}{args.tag}] epoch {epoch + 1} wall {time.perf_counter() - t0:.0f}s -ELBO "
                  f"{metrics['neg_elbo']:.1f} KL {metrics['kl']:.1f} nats{extra}", flush=True)

    train(model, stream.epoch, LoopConfig(epochs=cfg["epochs"], train=params.train.model_copy(update={"log_every": 10**9})),
          Print())
    model.eval()
    net, _, _ = load_feature_net(params.path("features/classifier.pt"))
    k = spec.num_classes
    x, y = read_split(data, spec, "test", limit=2000)
    x, y = torch.from_numpy(x[:2000]).float() / 255, torch.from_numpy(y[:2000])
    cond = model.conditional

    def report(what: str, images: torch.Tensor, wanted: torch.Tensor, grid: str | None = None) -> None:
        pred = embed(net, images)[1]
        hist = torch.bincount(pred, minlength=k).tolist()
        print(f"[{args.model}{args.tag}] {what}: classes {' / '.join(map(str, hist))} ({' / '.join(spec.classes)}), "
              f"accuracy {(pred == wanted).float().mean():.3f}", flush=True)
        if grid:
            save_grid(images[torch.linspace(0, len(images) - 1, 64).long()], REPO / f"bench/results/{args.model}{args.tag}-{grid}.png", nrow=8)

    with torch.no_grad():
        mu, logvar = model.encode(x, y if cond else None)
        rec = model.decode_latent(mu, y if cond else None)
        report("reconstructions", rec, y, "reconstructions")
        report("reconstructions > 0.5", (rec > 0.5).float(), y)
        if cond:
            for c in range(k):
                report(f"decoded with label {spec.classes[c]}", model.decode_latent(mu, torch.full_like(y, c)),
                       torch.full_like(y, c))
        g = torch.Generator().manual_seed(params.evaluate.seed)
        labels = torch.arange(3000) % k
        z = torch.randn(3000, cfg["latent_dim"], generator=g)
        report("prior samples", model.decode_latent(z, labels if cond else None), labels, "prior")
        xt, yt = read_split(data, spec, "train")
        xt, yt = torch.from_numpy(xt).float() / 255, torch.from_numpy(yt)
        mt, lt = model.encode(xt, yt if cond else None)
        zt = mt + torch.exp(0.5 * lt) * torch.randn(mt.shape, generator=g)  # posterior samples of training images
        for full in (False, True):
            zs = []
            for c in range(k):
                zc = zt[yt == c]
                if full:
                    dist = torch.distributions.MultivariateNormal(zc.mean(0), torch.cov(zc.T) + 1e-4 * torch.eye(zc.shape[1]))
                else:
                    dist = torch.distributions.Normal(zc.mean(0), zc.std(0))
                zs.append(dist.sample((1000,)))
            wanted = torch.arange(k).repeat_interleave(1000)
            report(f"ex-post {'full' if full else 'diagonal'} Gaussian per class", model.decode_latent(
                torch.cat(zs)[: len(wanted)], wanted if cond else None), wanted, f"expost-{'full' if full else 'diag'}")


if __name__ == "__main__":
    main()
