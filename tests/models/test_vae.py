import math

import pytest
import torch

from components.models import build
from components.models.losses import kl_diag_gaussian
from tests.models.test_contract import TINY, batch, spec


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3) * 0.5
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 4, 3)  # (S, B, d)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    mc = (log_q - log_p).mean(0)
    assert torch.allclose(kl_diag_gaussian(mu, logvar), mc, rtol=0.02, atol=0.01)
    assert torch.allclose(kl_diag_gaussian(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))


def test_kl_weight_scales_the_per_image_kl_and_nothing_else():
    s = spec()
    x = batch(s, n=16)
    torch.manual_seed(0)
    weights = build("vae", TINY["vae"], s).state_dict()
    out = {}
    for beta in (1.0, 4.0):
        model = build("vae", {**TINY["vae"], "kl_weight": beta}, s)
        model.load_state_dict(weights)
        torch.manual_seed(1)  # same posterior sample for both
        out[beta] = model.phases(model.optimizers())[0].loss(x)
    (obj1, m1), (obj4, m4) = out[1.0], out[4.0]
    assert torch.allclose(obj1, m1["rec"] + m1["kl"], rtol=1e-5)  # batch means of per-image terms
    assert torch.allclose(obj4 - obj1, 3 * m1["kl"], rtol=1e-4)
    assert torch.allclose(m4["neg_elbo"], m1["neg_elbo"]), "the reported ELBO is beta-free"


def test_importance_weighted_bound_is_tighter_than_elbo():
    torch.manual_seed(0)
    s = spec()
    model = build("vae", TINY["vae"], s)
    x = batch(s, n=32)[0]
    torch.manual_seed(0)
    elbo = torch.stack([model.log_likelihood(x) for _ in range(20)]).mean()
    iw = model.log_likelihood(x, n_samples=50).mean()
    assert iw > elbo


def test_bernoulli_on_non_binary_data_is_refused():
    with pytest.raises(ValueError, match="models.vae.likelihood: bernoulli needs binary data"):
        build("vae", {**TINY["vae"], "likelihood": "bernoulli"}, spec(binary=False))


def test_auto_likelihood_follows_the_data():
    assert build("vae", TINY["vae"], spec(binary=True)).likelihood == "bernoulli"
    assert build("vae", TINY["vae"], spec(binary=False)).likelihood == "gaussian"


def test_gaussian_bound_is_for_8bit_pixels():
    """Dequantized Gaussian: log P(x) <= 0 for discrete data, so -log P in bits/dim is positive."""
    torch.manual_seed(0)
    s = spec(binary=False)
    model = build("vae", TINY["vae"], s)
    x = (torch.rand(8, *s.shape) * 255).round() / 255
    ll = model.log_likelihood(x)
    assert (ll < 0).all()
    assert (-ll / (math.prod(s.shape) * math.log(2)) < 16).all()
