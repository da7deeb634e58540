"""CycleGAN: cycle loss of identity generators, unpaired domains from classes or a transform, the
linear learning-rate decay, and domain names checked against the data."""

import pytest
import torch
from torch import nn

from components.data.shards import DatasetSpec
from components.models import build
from tests.models.test_contract import TINY


def shapes_spec():
    return DatasetSpec(name="dsprites", resolution=32, channels=1, classes=["square", "ellipse", "heart"], binary=True,
                       counts={"train": 8}, shards={})


def tiny(**extra):
    return build("cyclegan", {**TINY["cyclegan"], "domain_a": "square", "domain_b": "heart", **extra}, shapes_spec())


def test_cycle_loss_is_zero_for_identity_generators_and_positive_otherwise():
    torch.manual_seed(0)
    model = tiny()
    a, b = torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32)
    assert model.cycle_loss(a, b).item() > 0
    model.g_ab, model.g_ba = nn.Identity(), nn.Identity()
    assert model.cycle_loss(a, b).item() == pytest.approx(0.0, abs=1e-6)


def test_domains_from_classes_use_only_their_classes():
    model = tiny()
    x, y = torch.rand(6, 1, 32, 32), torch.tensor([0, 1, 2, 0, 2, 1])
    dom = model.domains(x, y)
    assert dom["a"][1].tolist() == [0, 3] and dom["b"][1].tolist() == [2, 4]
    assert torch.equal(dom["b"][0], x[[2, 4]])


def test_a_transformed_copy_splits_one_pool_into_disjoint_domains():
    model = tiny(domain_a="all", domain_b="all", transform_b="invert")
    x, y = (torch.rand(64, 1, 32, 32) > 0.5).float(), torch.zeros(64, dtype=torch.long)
    dom = model.domains(x, y)
    ia, ib = set(dom["a"][1].tolist()), set(dom["b"][1].tolist())
    assert not ia & ib and ia | ib == set(range(64)) and ia and ib, "every image in exactly one domain"
    assert torch.equal(dom["b"][0], 1 - x[sorted(ib)])
    again = model.domains(x[sorted(ib)], y[: len(ib)])
    assert len(again["a"][1]) == 0, "membership is a property of the image: stable across batches"


def test_learning_rate_is_constant_then_decays_linearly():
    model = tiny(lr=1.0, decay_start=0.5)
    opts = model.optimizers()
    rates = []
    for epoch in range(10):
        model.schedule(opts, epoch, 10)
        rates.append(opts["g"].param_groups[0]["lr"])
        assert opts["d"].param_groups[0]["lr"] == rates[-1]
    assert rates == pytest.approx([1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2])


@pytest.mark.parametrize("extra,match", [({"domain_a": "circle"}, r"models\.cyclegan\.domain_a: 'circle' is not a class"),
                                         ({"domain_b": "square"}, r"both 'square' with transform_b: none")])
def test_bad_domains_name_the_key(extra, match):
    with pytest.raises(ValueError, match=match):
        tiny(**extra)


def test_history_pool_returns_older_fakes_once_full():
    """Shrivastava et al. 2017's history of 50 generated images: the first 50 pass through and are kept; after
    that about half of each batch is swapped for stored images."""
    from components.models.cyclegan import ImagePool

    torch.manual_seed(0)
    pool = ImagePool(50)
    first = torch.rand(50, 1, 4, 4)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 50
    new = torch.rand(200, 1, 4, 4) + 10  # distinguishable from the stored ones
    out = pool.query(new)
    swapped = (out != new).flatten(1).any(1).float().mean().item()
    assert out.shape == new.shape and 0.4 < swapped < 0.6, swapped
    assert (out[:50] < 5).flatten(1).all(1).any(), "the first swaps return images stored before this batch"
    assert torch.equal(ImagePool(0).query(new), new), "pool_size 0: no history"


def test_patch_discriminator_receptive_field_is_34_pixels():
    """A score changes when a pixel inside its 34x34 window changes and never when one outside does."""
    from components.models.cyclegan import patch_discriminator

    torch.manual_seed(0)
    d = patch_discriminator(1, 4)
    d = nn.Sequential(*[nn.Identity() if isinstance(m, nn.InstanceNorm2d) else m for m in d])  # per-image statistics
    # would couple every pixel to every score; the convolutions' window is what "receptive field" means
    x = torch.rand(1, 1, 64, 64, requires_grad=True)
    d(x)[0, 0, 5, 5].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().squeeze(1)
    assert rows.max() - rows.min() + 1 == 34


@pytest.mark.parametrize("down", [1, 2])
def test_generator_residual_blocks_run_at_the_downsampled_size(down):
    """`downsamplings` stride-2 convs before the residual blocks (the paper's generator has 2), transposed convs back."""
    from components.models.cyclegan import ResidualBlock

    model = tiny(downsamplings=down)
    seen = []
    for m in model.g_ab.modules():
        if isinstance(m, ResidualBlock):
            m.register_forward_hook(lambda _m, inp, _out: seen.append(tuple(inp[0].shape)))
    out = model.translate(torch.rand(2, 1, 32, 32), "a2b")
    ch = TINY["cyclegan"]["g_channels"]
    assert out.shape == (2, 1, 32, 32) and 0 <= out.min() and out.max() <= 1
    assert seen and set(seen) == {(2, ch * 2**down, 32 // 2**down, 32 // 2**down)}
