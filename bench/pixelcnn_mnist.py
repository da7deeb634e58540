"""Named run: PixelCNN's exact NLL on binarized MNIST test data (tests/data/mnist-t10k, the original t10k files).

Only the 10,000-image MNIST test split is on this machine, so the run stages it as a source folder in
which the first `--train` images play the training split and the rest the test split (written as IDX
files, the format torchvision stages), then goes through the pipeline's own code: `prepare` with
`data.dataset: mnist`, `data.binarize: true` (threshold at 128) and `resolution: 32` (zero padding),
the training loop in this process, and the evaluation's exact likelihood on the held-out test rows.
Reports nats per image (over the 32x32 padded image, and the padding's share) and bits/dim.

    uv run python bench/pixelcnn_mnist.py [--train 8000] [--epochs 4] [--channels 32] [--layers 7]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MNIST_T10K = REPO / "tests" / "data" / "mnist-t10k"


def write_idx(path: Path, array: np.ndarray) -> None:
    header = (0x08 << 8 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=8000, help="t10k rows used for training (the rest are the test)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--layers", type=int, default=7)
    ap.add_argument("--arch", default="gated")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from components.config import TrainConfig, load_config
    from components.data import ShardStream, load_spec, read_split
    from components.data.sources import load_mnist_split, prepare
    from components.evaluation.likelihood import test_bound
    from components.models import build
    from components.training.loop import LoopConfig, train

    torch.set_num_threads(args.threads)
    images, labels = load_mnist_split(MNIST_T10K, "test")  # (10000, 1, 28, 28)
    with tempfile.TemporaryDirectory(prefix="genzoo-mnist-") as tmp:
        root, staged = Path(tmp), Path(tmp) / "staged"
        staged.mkdir()
        for stem, rows in (("train", slice(0, args.train)), ("t10k", slice(args.train, None))):
            write_idx(staged / f"{stem}-images-idx3-ubyte.gz", images[rows, 0])
            write_idx(staged / f"{stem}-labels-idx1-ubyte.gz", labels[rows])
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["data"].update(dataset="mnist", source_dir=str(staged), binarize=True, resolution=32, n_val=500)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        cfg = load_config(root / "params.yaml")
        prepare(cfg)
        data_dir = root / "datasets/prepared"
        spec = load_spec(data_dir)
        torch.manual_seed(0)
        model = build("pixelcnn", {"arch": args.arch, "channels": args.channels, "layers": args.layers}, spec)

        class Log:
            def on_epoch_end(self, epoch, metrics, history, state):
                print(f"epoch {epoch + 1}/{args.epochs}: train nll {metrics['nll']:.2f} nats "
                      f"({metrics['epoch_time_s']:.0f}s)", flush=True)

            def on_progress(self, *a):
                pass

        stream = ShardStream(data_dir, spec, "train", 64)
        t0 = time.perf_counter()
        train(model, stream.epoch, LoopConfig(epochs=args.epochs, train=TrainConfig(log_every=10**9)), Log())
        train_s = time.perf_counter() - t0
        test_x, _ = read_split(data_dir, spec, "test")
        nll = test_bound(model, test_x)
        padding = float((test_x == 0).reshape(len(test_x), -1)[:, :].mean())  # share of 0 pixels (context)
        result = {"run": "pixelcnn on binarized MNIST t10k (threshold 128, zero-padded to 32x32)",
                  "train_images": spec.counts["train"], "test_images": nll["n"], "arch": args.arch,
                  "channels": args.channels, "layers": args.layers, "epochs": args.epochs,
                  "test_nll_nats": nll["nats"], "test_nll_bits_per_dim": nll["bits_per_dim"],
                  "bits_per_dim_over_28x28": nll["nats"] / (28 * 28 * math.log(2)),
                  "zero_pixel_share": padding, "train_time_s": train_s}
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
