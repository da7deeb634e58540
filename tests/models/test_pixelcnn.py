"""PixelCNN: causality by gradients, the blind spot of the masked version and none in the gated one, and
an exact likelihood that sums to one; the class-conditional PixelCNN the same for every label."""

import itertools
import math

import pytest
import torch

from components.data.shards import DatasetSpec
from components.models import build


def spec(resolution=8, binary=True, channels=1, classes=("a",)):
    return DatasetSpec(name="toy", resolution=resolution, channels=channels, classes=list(classes), binary=binary,
                       counts={"train": 1}, shards={})


def dependence(model, resolution: int, i: int, j: int, labels=None) -> torch.Tensor:
    """|d output(i, j) / d input| (H, W): which input pixels the prediction for pixel (i, j) depends on."""
    x = torch.rand(1, 1, resolution, resolution, requires_grad=True)
    model.logits(x, labels)[0, :, :, i, j].sum().backward()
    return x.grad[0, 0].abs()


@pytest.mark.parametrize("arch", ["gated", "masked"])
def test_no_output_depends_on_its_own_or_later_pixels(arch):
    torch.manual_seed(0)
    r = 8
    model = build("pixelcnn", {"arch": arch, "channels": 8, "layers": 4}, spec(r))
    for i, j in itertools.product(range(r), range(r)):
        grad = dependence(model, r, i, j).flatten()
        assert grad[i * r + j :].abs().sum() == 0, f"pixel ({i}, {j}) sees itself or the future"


def test_gated_stack_has_no_blind_spot_and_the_masked_one_does():
    """With enough layers the gated model's prediction for (i, j) depends on every earlier pixel; the masked
    PixelCNN never sees the pixels up and to the right of it (van den Oord et al. 2016b, figure 1)."""
    torch.manual_seed(0)
    r, i, j = 8, 5, 2
    earlier = torch.zeros(r, r, dtype=torch.bool)
    earlier.view(-1)[: i * r + j] = True
    gated = build("pixelcnn", {"arch": "gated", "channels": 8, "layers": 8}, spec(r))
    assert (dependence(gated, r, i, j)[earlier] > 0).all(), "gated: every earlier pixel is in the receptive field"
    masked = build("pixelcnn", {"arch": "masked", "channels": 8, "layers": 8}, spec(r))
    grad = dependence(masked, r, i, j)
    # the 7x7 mask-A stem reaches 3 columns right in the rows above; each mask-B layer one more row up, one
    # more column right: pixels further right in the nearest rows are never seen
    assert grad[i - 1, j + 5] == 0 and grad[i - 2, j + 5] == 0, "masked: the blind spot up and to the right"
    assert grad[i - 1, j] > 0 and grad[i, j - 1] > 0


@pytest.mark.parametrize("arch", ["gated", "masked"])
def test_likelihood_of_every_2x2_binary_image_sums_to_one(arch):
    torch.manual_seed(0)
    model = build("pixelcnn", {"arch": arch, "channels": 4, "layers": 2}, spec(2))
    for p in model.parameters():  # a random, non-trivial model
        torch.nn.init.normal_(p, 0, 0.5)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 1, 2, 2)
    total = model.log_likelihood(images).exp().sum().item()
    assert total == pytest.approx(1.0, abs=1e-5)


def test_softmax_output_is_a_distribution_over_256_values_per_pixel():
    torch.manual_seed(0)
    model = build("pixelcnn", {"channels": 4, "layers": 1}, spec(2, binary=False))
    x = torch.randint(0, 256, (3, 1, 2, 2)).float() / 255
    ll = model.log_likelihood(x)
    assert ll.shape == (3,) and (ll < 0).all()
    manual = torch.log_softmax(model.logits(x), dim=2)  # (B, C, 256, H, W)
    target = (x * 255).round().long().unsqueeze(2)
    assert torch.allclose(ll, manual.gather(2, target).flatten(1).sum(1), atol=1e-4)
    assert ll.mean().item() > -4 * math.log(256) - 1, "near uniform at init: about log(1/256) per pixel"


def test_sampling_follows_the_model():
    """A model whose first-pixel logit is forced very high and the rest very low samples 1 then 0s."""
    torch.manual_seed(0)
    model = build("pixelcnn", {"channels": 4, "layers": 1}, spec(3))
    with torch.no_grad():
        last = model.head[-1]
        last.weight.zero_()
        last.bias.fill_(-30.0)
    s = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, 3, 3) and s.sum() == 0
    with torch.no_grad():
        last.bias.fill_(30.0)
    assert model.sample(2).sum() == 2 * 9


@pytest.mark.parametrize("name,arch,binary,kernel", [("pixelcnn", "gated", True, 3), ("pixelcnn", "gated", False, 5),
                                                      ("pixelcnn", "masked", False, 3), ("cpixelcnn", "gated", True, 3),
                                                      ("cpixelcnn", "gated", False, 3)])
def test_sampling_by_rows_or_windows_gives_the_images_of_full_passes(name, arch, binary, kernel):
    """Sampling computes each prediction from what its pixel can depend on (the gated network's vertical stack
    once per row, then its horizontal stack along the row; or the whole network on the receptive window):
    exactly the samples of whole-image passes."""
    torch.manual_seed(0)
    r = 20
    model = build(name, {"arch": arch, "channels": 4, "layers": 2, "kernel": kernel},
                  spec(r, binary=binary, classes=("a", "b")))
    for p in model.parameters():
        torch.nn.init.normal_(p, 0, 0.3)
    labels = torch.tensor([0, 1, 1]) if name == "cpixelcnn" else None
    x = torch.rand(3, 1, r, r).round() if binary else torch.rand(3, 1, r, r)
    with torch.no_grad():
        whole = model.logits(x, labels)  # (B, C, L, H, W)
        for passes in ("rows", "window", "full"):
            seen = []
            for i, j, out in model.raster_logits(x, labels, passes):
                torch.testing.assert_close(out, whole[..., i, j], rtol=1e-5, atol=1e-5, msg=f"{passes} at {i}, {j}")
                seen.append((i, j))
            assert seen == [(i, j) for i in range(r) for j in range(r)], passes
    full = model.sample(3, labels, generator=torch.Generator().manual_seed(1), passes="full")
    assert full.unique().numel() > 1, "a constant image would hide a difference"
    for passes in ("rows", "window"):
        assert torch.equal(model.sample(3, labels, generator=torch.Generator().manual_seed(1), passes=passes), full)
    assert 2 * model.receptive_rows + 1 < r - 1, "the window is smaller than the image both ways"


@pytest.mark.parametrize("arch", ["gated", "masked"])
def test_conditional_pixelcnn_is_causal_and_a_distribution_for_every_label(arch):
    """p(x | y): no output sees its own or later pixels whatever the label, the 16 images of a 2x2 binary toy
    sum to one under each label, and the label changes the distribution."""
    torch.manual_seed(0)
    r, classes = 6, ("a", "b", "c")
    model = build("cpixelcnn", {"arch": arch, "channels": 4, "layers": 2}, spec(r, classes=classes))
    for p in model.parameters():
        torch.nn.init.normal_(p, 0, 0.5)
    for y in range(3):
        label = torch.tensor([y])
        for i, j in itertools.product(range(r), range(r)):
            grad = dependence(model, r, i, j, label).flatten()
            assert grad[i * r + j :].abs().sum() == 0, f"label {y}: pixel ({i}, {j}) sees itself or the future"
    toy = build("cpixelcnn", {"arch": arch, "channels": 4, "layers": 2}, spec(2, classes=classes))
    for p in toy.parameters():
        torch.nn.init.normal_(p, 0, 0.5)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 1, 2, 2)
    per_label = [toy.log_likelihood(images, torch.full((16,), y)) for y in range(3)]
    for y, ll in enumerate(per_label):
        assert ll.exp().sum().item() == pytest.approx(1.0, abs=1e-5), f"label {y}"
    assert (per_label[0] - per_label[1]).abs().max() > 1e-3, "the label changes p(x | y)"
    with pytest.raises(ValueError, match="conditional: pass the images' labels"):
        toy.log_likelihood(images)
