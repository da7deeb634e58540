"""SN-GAN (Miyato et al. 2018): every discriminator layer is spectrally normalised, so after power iteration
each weight's largest singular value is ~1."""

import torch
from torch import nn

from tests.models.test_contract import batch, spec, tiny


def test_discriminator_weights_have_unit_spectral_norm():
    torch.manual_seed(0)
    s = spec()
    model = tiny("sngan", s)
    x, _ = batch(s)
    for _ in range(300):  # the power iteration advances one step per training-mode forward pass
        model.discriminator(x * 2 - 1)
    model.eval()
    layers = [m for m in model.discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert layers
    for m in layers:
        w = m.weight.detach().reshape(m.weight.shape[0], -1)
        sigma = torch.linalg.matrix_norm(w, ord=2).item()
        assert abs(sigma - 1) < 0.05, f"{m}: sigma {sigma:.3f}"
