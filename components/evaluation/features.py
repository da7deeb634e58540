"""The pipeline's own feature space: a small classifier trained on the prepared dataset's labels.

Standard Inception weights cannot be downloaded on air-gapped machines, and Inception features of
32x32 sprites say little anyway. Like the LeNet features used for MNIST FID in the GAN literature,
we train a classifier on the data's labels (dSprites shape, MNIST digit, ...) and use its penultimate
layer as the feature space of every sample metric. Its held-out accuracy gates its use, and the
sha256 of its weights is part of every metric's protocol.
"""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from components.data import DatasetSpec, read_split, to_float
from components.io import save_torch

FEATURE_DIM = 128


class FeatureNet(nn.Module):
    """conv 32-64-128 (stride 2, BN, ReLU) -> global average pool -> 128-d features -> class logits."""

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        layers, prev = [], channels
        for w in (width, width * 2, width * 4):
            layers += [nn.Conv2d(prev, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
                       nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
            prev = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, C, H, W) -> (B, 4w)
        self.embed = nn.Sequential(nn.Linear(prev, FEATURE_DIM), nn.ReLU(True))
        self.head = nn.Linear(FEATURE_DIM, num_classes)
        self.num_features = FEATURE_DIM

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features of images in [0, 1]: (B, C, H, W) -> (B, 128)."""
        return self.embed(self.body(x * 2 - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def weights_sha256(net: nn.Module) -> str:
    buf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in sorted(net.state_dict().items())}, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


@torch.no_grad()
def embed(net: FeatureNet, images: np.ndarray | torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, 128), predicted labels (N,)) of uint8 or [0, 1] float images."""
    net.eval()
    feats, preds = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = to_float(chunk) if (isinstance(chunk, np.ndarray) or chunk.dtype == torch.uint8) else chunk.float()
        f = net.features(x)
        feats.append(f)
        preds.append(net.head(f).argmax(1))
    return torch.cat(feats), torch.cat(preds)


def accuracy(net: FeatureNet, images: np.ndarray, labels: np.ndarray) -> float:
    _, pred = embed(net, images)
    return float((pred.numpy() == labels).mean())


def train_feature_net(data_dir: Path, spec: DatasetSpec, epochs: int = 4, batch_size: int = 128, seed: int = 0,
                      log=print) -> tuple[FeatureNet, dict]:
    """Train on the train split; report accuracy on the val and test splits (never trained on)."""
    torch.manual_seed(seed)
    x_train, y_train = read_split(data_dir, spec, "train")
    x_val, y_val = read_split(data_dir, spec, "val")
    x_test, y_test = read_split(data_dir, spec, "test")
    net = FeatureNet(spec.channels, spec.num_classes)
    batch_size = min(batch_size, max(8, len(y_train) // 8))  # a small folder of images still gets 8 steps an epoch
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps = epochs * (len(y_train) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=max(steps, 1))
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = rng.permutation(len(y_train))
        for start in range(0, len(perm) - batch_size + 1, batch_size):
            idx = perm[start : start + batch_size]
            x, y = to_float(x_train[idx]), torch.from_numpy(y_train[idx])
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log(f"[featurize] epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, val accuracy "
            f"{accuracy(net, x_val, y_val):.4f} ({time.perf_counter() - t0:.0f}s)")
    net.eval()
    return net, {"val_accuracy": accuracy(net, x_val, y_val), "test_accuracy": accuracy(net, x_test, y_test),
                 "epochs": epochs, "train_time_s": time.perf_counter() - t0}


def save_feature_net(net: FeatureNet, spec: DatasetSpec, path: Path) -> str:
    """Write the classifier atomically; returns the sha256 of its weights."""
    save_torch(path, {"state_dict": net.state_dict(), "channels": spec.channels, "num_classes": spec.num_classes,
                      "dataset_manifest_sha256": spec.manifest_sha256})
    return weights_sha256(net)


def load_feature_net(path: Path) -> tuple[FeatureNet, str, str]:
    """(net in eval mode, its weights sha256, the manifest hash of the data it was trained on)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    net = FeatureNet(blob["channels"], blob["num_classes"])
    net.load_state_dict(blob["state_dict"])
    return net.eval(), weights_sha256(net), blob["dataset_manifest_sha256"]


DEFAULT_MIN_ACCURACY = {"dsprites": 0.99, "mnist": 0.97, "fashion_mnist": 0.85, "cifar10": 0.70, "folder": 0.0}


def featurize(params, out_dir: Path, log=print) -> dict:
    """Stage `featurize`: train the classifier, gate on held-out accuracy, cache train/test features.

    Writes out_dir/classifier.pt, out_dir/features.pt (train and test features and labels), out_dir/regressor.pt
    (the factor regressor, where the data has factors) and returns the summary for out_dir/featurize.json. Raises EvaluationError when the gate fails.
    """
    from components.data import load_spec
    from components.errors import EvaluationError

    cfg = params.evaluate
    data_dir = params.path(params.data.out_dir)
    spec = load_spec(data_dir)
    threshold = cfg.min_feature_accuracy if cfg.min_feature_accuracy is not None else DEFAULT_MIN_ACCURACY[spec.name]
    if spec.num_classes == 1:
        log("[featurize] one class: the classifier has nothing to learn, so the feature space is its initial random "
            "network (random-network features: a weaker FID / precision / recall, comparable only within this dataset)")
    elif cfg.min_feature_accuracy is None and spec.name not in ("dsprites", "mnist", "fashion_mnist", "cifar10"):
        log(f"[featurize] {spec.name}: no default accuracy gate; set evaluate.min_feature_accuracy to require one")
    net, scores = train_feature_net(data_dir, spec, epochs=cfg.feature_epochs, seed=cfg.seed, log=log)
    if scores["test_accuracy"] < threshold:
        raise EvaluationError(
            f"featurize: held-out accuracy {scores['test_accuracy']:.4f} < evaluate.min_feature_accuracy "
            f"{threshold} for {spec.name}; raise evaluate.feature_epochs or lower the threshold")
    sha = save_feature_net(net, spec, out_dir / "classifier.pt")
    feats = {}
    for split in ("train", "test"):
        images, labels = read_split(data_dir, spec, split)
        f, _ = embed(net, images)
        feats[split] = {"features": f, "labels": torch.from_numpy(labels)}
    save_torch(out_dir / "features.pt", feats)
    from components.evaluation import factors

    regressor = None
    if factors.available(spec):  # dSprites: position, scale and orientation, for translation metrics
        regressor, floor = factors.train_factor_regressor(data_dir, spec, epochs=2 * cfg.feature_epochs, seed=cfg.seed,
                                                          log=log)
        scores.update(floor)
    factors.save_regressor(regressor, spec, out_dir / "regressor.pt")
    return {"feature_net_sha256": sha, "dataset_manifest_sha256": spec.manifest_sha256, "dataset": spec.name,
            "min_accuracy": threshold, "feature_dim": FEATURE_DIM, **scores}
