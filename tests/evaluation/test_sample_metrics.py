"""Sanity of the sample metrics on real data: the real MNIST test split and procedural dSprites,
in the feature space of a classifier trained as the featurize stage trains it."""

import numpy as np
import pytest
import torch

from components.data import dsprites
from components.data.shards import DatasetSpec, write_dataset
from components.data.sources import load_mnist_split
from components.evaluation.features import embed, train_feature_net
from components.evaluation.sample_metrics import class_coverage, fid, kid, memorization, precision_recall
from tests.conftest import MNIST_T10K


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """MNIST t10k: 6000 images train the feature net; two disjoint held-out halves of 2000 remain."""
    images, labels = load_mnist_split(MNIST_T10K, "test")
    images = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))  # 28 -> 32
    root = tmp_path_factory.mktemp("mnist")
    splits = {"train": (images[:6000], labels[:6000], {}), "val": (images[6000:6500], labels[6000:6500], {}),
              "test": (images[6000:], labels[6000:], {})}
    spec = write_dataset(root, name="mnist", splits=splits, classes=[str(i) for i in range(10)], source="t10k", shard_rows=4096)
    net, scores = train_feature_net(root, spec, epochs=2, log=lambda *_: None)
    assert scores["val_accuracy"] > 0.9
    torch.manual_seed(0)
    f_train, _ = embed(net, images[:6000])
    a, b = images[6000:8000], images[8000:10000]
    f_a, _ = embed(net, a)
    f_b, _ = embed(net, b)
    noise = torch.rand(2000, 1, 32, 32)
    f_noise, _ = embed(net, noise)
    f_repeat, _ = embed(net, np.repeat(a[:1], 2000, axis=0))
    return {"net": net, "train": f_train, "a": f_a, "b": f_b, "noise": f_noise, "repeat": f_repeat,
            "images": images, "labels": torch.from_numpy(labels)}


def test_fid_of_real_against_real_is_small_and_far_below_noise_or_one_image(mnist):
    real = fid(mnist["a"], mnist["b"])
    noise = fid(mnist["a"], mnist["noise"])
    repeat = fid(mnist["a"], mnist["repeat"])
    assert real < 0.05 * noise and real < 0.05 * repeat, (real, noise, repeat)
    assert fid(mnist["a"], mnist["a"]) < 1e-3 * noise


def test_kid_of_two_samples_of_one_distribution_is_about_zero(mnist):
    same, same_std = kid(mnist["a"], mnist["b"])
    other, _ = kid(mnist["a"], mnist["noise"])
    assert abs(same) < 3 * same_std + 1e-3 * other, (same, same_std, other)
    assert other > 100 * abs(same)


def test_precision_and_recall_of_real_against_real_are_high(mnist):
    p, r = precision_recall(mnist["a"], mnist["b"])
    assert p > 0.7 and r > 0.7, (p, r)
    p_noise, _ = precision_recall(mnist["a"], mnist["noise"])
    _, r_repeat = precision_recall(mnist["a"], mnist["repeat"])
    assert p_noise < 0.1 and r_repeat < 0.05, "noise is imprecise; one repeated image recalls nothing"


def test_a_model_that_returns_training_images_is_flagged(mnist):
    copied = memorization(mnist["train"][:2000], mnist["train"], mnist["a"])
    honest = memorization(mnist["b"], mnist["train"], mnist["a"])
    assert copied["memorization_fraction"] > 0.99
    assert honest["memorization_fraction"] < 0.15, honest
    assert (copied["_nearest_index"] == torch.arange(2000)).all()


def test_a_model_that_outputs_one_class_is_flagged_by_coverage(mnist):
    net, labels, images = mnist["net"], mnist["labels"], mnist["images"]
    ones = images[6000:][labels[6000:].numpy() == 1][:500]
    _, pred_ones = embed(net, ones)
    _, pred_all = embed(net, images[8000:])
    collapsed = class_coverage(pred_ones, labels[:6000], 10)
    healthy = class_coverage(pred_all, labels[:6000], 10)
    assert collapsed["classes_covered"] == 1 and healthy["classes_covered"] == 10
    assert collapsed["class_kl"] > 10 * healthy["class_kl"]


def test_dsprites_real_against_real_is_far_below_noise_and_one_repeated_sprite(tmp_path):
    images, labels, _ = dsprites.generate(5000, 32, seed=5)
    splits = {"train": (images[:3000], labels[:3000], {}), "val": (images[3000:3400], labels[3000:3400], {}),
              "test": (images[3000:], labels[3000:], {})}
    spec: DatasetSpec = write_dataset(tmp_path, name="dsprites", splits=splits, classes=list(dsprites.SHAPES),
                                      source="test", shard_rows=4096)
    net, scores = train_feature_net(tmp_path, spec, epochs=2, log=lambda *_: None)
    f_a, _ = embed(net, images[3000:4000])
    f_b, _ = embed(net, images[4000:5000])
    f_noise, _ = embed(net, (torch.rand(1000, 1, 32, 32) > 0.5).float())
    f_repeat, _ = embed(net, np.repeat(images[4000:4001], 1000, axis=0))
    real = fid(f_a, f_b)
    assert real < 0.05 * fid(f_a, f_noise) and real < 0.05 * fid(f_a, f_repeat)
    p, r = precision_recall(f_a, f_b)
    assert p > 0.7 and r > 0.7
