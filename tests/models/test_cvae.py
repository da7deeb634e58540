"""CVAE (Sohn et al. 2015): the label reaches both the encoder q(z | x, y) and the decoder p(x | z, y)."""

import torch

from tests.models.test_contract import spec, tiny


def test_the_label_changes_the_encoder_and_the_decoder():
    torch.manual_seed(0)
    s = spec()
    model = tiny("cvae", s).eval()
    x = torch.rand(4, *s.shape).round()
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    mu0, _ = model.encode(x, y0)
    mu1, _ = model.encode(x, y1)
    assert not torch.allclose(mu0, mu1), "the encoder ignores the label"
    z = torch.randn(4, model.config.latent_dim)
    assert not torch.allclose(model.decode_latent(z, y0), model.decode_latent(z, y1)), "the decoder ignores the label"
    ll0 = model.log_likelihood(x, y0)
    assert ll0.shape == (4,) and not torch.allclose(ll0, model.log_likelihood(x, y1))
