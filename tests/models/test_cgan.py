"""Conditional GAN: the projection discriminator (Miyato & Koyama 2018, eq. 3: D(x, y) = psi(phi(x)) +
<embed(y), phi(x)>), and AC-GAN's class loss on real and generated images (Odena et al. 2017, eq. 2-3)."""

import torch
import torch.nn.functional as F

from tests.models.test_contract import batch, spec, tiny


def test_projection_term_is_the_inner_product_of_class_embedding_and_features():
    torch.manual_seed(0)
    s = spec()
    model = tiny("cgan", s, d_norm="none").eval()
    d = model.discriminator
    x = torch.rand(5, *s.shape) * 2 - 1
    y0, y2 = torch.zeros(5, dtype=torch.long), torch.full((5,), 2)
    h = d.features(x)
    expected = ((d.embed(y0) - d.embed(y2)) * h).sum(1)
    assert torch.allclose(d(x, y0) - d(x, y2), expected, atol=1e-5)
    assert not torch.allclose(d(x, y0), d(x, y2)), "the label moves D's score"


def test_acgan_class_loss_covers_real_and_generated_images():
    torch.manual_seed(0)
    s = spec()
    model = tiny("cgan", s, aux_weight=1.0, d_norm="none")  # spectral norm would step its power iteration per pass
    x, y = batch(s)
    torch.manual_seed(1)
    loss, metrics = model.d_loss((x, y))
    assert {"aux_real", "aux_fake_d"} <= set(metrics)
    torch.manual_seed(1)  # the same fakes: the loss is the adversarial part plus both class terms
    with torch.no_grad():
        fake = model._fake(y)
    h_real, h_fake = model.discriminator.features(x * 2 - 1), model.discriminator.features(fake)
    aux = F.cross_entropy(model.classifier(h_real), y) + F.cross_entropy(model.classifier(h_fake), y)
    assert torch.allclose(metrics["aux_real"] + metrics["aux_fake_d"], aux.detach(), atol=1e-5)
    assert torch.allclose(loss.detach(), metrics["d_loss"] + aux.detach(), atol=1e-5)
