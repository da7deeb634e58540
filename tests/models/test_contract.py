"""The contract every registered model keeps: shapes, finite loss, gradients, sample range."""

import math

import pytest
import torch

from components.data.shards import DatasetSpec
from components.models import MODELS, build

VARIANTS = [(name, {}) for name in MODELS] + [("vae", {"arch": "conv"}), ("vae", {"likelihood": "gaussian"}),
                                            ("dcgan", {"loss": "minimax"})]
TINY = {"vae": {"hidden_dim": 32, "latent_dim": 3, "conv_channels": 4},
        "dcgan": {"latent_dim": 8, "g_channels": 4, "d_channels": 4}}


def spec(binary=True, channels=1, resolution=32):
    return DatasetSpec(name="toy", resolution=resolution, channels=channels, classes=["a", "b", "c"], binary=binary,
                       counts={"train": 8}, shards={})


def batch(s, n=8):
    x = torch.rand(n, *s.shape)
    return (x.round() if s.binary else x), torch.zeros(n, dtype=torch.long)


@pytest.mark.parametrize("name,extra", VARIANTS, ids=lambda v: str(v))
@pytest.mark.parametrize("channels,resolution", [(1, 32), (3, 64)])
def test_model_contract(name, extra, channels, resolution):
    torch.manual_seed(0)
    s = spec(binary=extra.get("likelihood") != "gaussian", channels=channels, resolution=resolution)
    model = build(name, {**TINY.get(name, TINY["dcgan"]), **extra}, s)
    optimizers = model.optimizers()
    phases = model.phases(optimizers)
    assert phases and all(p.optimizer in optimizers for p in phases)
    b = batch(s)
    for phase in phases:
        model.zero_grad(set_to_none=True)
        loss, metrics = phase.loss(b)
        assert loss.dim() == 0 and math.isfinite(loss.item()), phase.name
        assert all(math.isfinite(float(v)) for v in metrics.values())
        loss.backward()
        grads = [p.grad for p in phase.parameters if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), f"{phase.name} gradients"
        assert any(g.abs().sum() > 0 for g in grads)
        optimizers[phase.optimizer].step()
    g = torch.Generator().manual_seed(0)
    samples = model.sample(5, generator=g)
    assert samples.shape == (5, *s.shape)
    assert samples.min() >= 0 and samples.max() <= 1
    assert torch.equal(samples, model.sample(5, generator=torch.Generator().manual_seed(0))), "seeded sampling"
    z = model.latent(3)
    assert model.decode_latent(z).shape == (3, *s.shape)
    if model.has_likelihood:
        ll = model.log_likelihood(b[0])
        assert ll.shape == (8,) and torch.isfinite(ll).all()


def test_registry_names_match_params_sections():
    import yaml

    from tests.conftest import REPO

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(params["models"]) <= set(MODELS)
    assert set(params["pipeline"]["models"]) <= set(MODELS)
