"""InfoGAN (Chen et al. 2016): the mutual-information bound's gradient reaches both the generator and Q."""

import torch

from tests.models.test_contract import batch, spec, tiny


def test_mutual_information_term_trains_generator_and_q():
    torch.manual_seed(0)
    s = spec()
    model = tiny("infogan", s, info_weight=1.0)
    x, _ = batch(s)
    cat, cont = model.codes(8)
    fake = model.generator(model.compose(torch.randn(8, model.config.latent_dim), cat, cont))
    info, metrics = model._info(model.discriminator.features(fake), cat, cont)
    model.zero_grad()
    (-info).backward()
    g_grad = sum(p.grad.abs().sum() for p in model.generator.parameters() if p.grad is not None)
    q_grad = sum(p.grad.abs().sum() for p in model.q_head.parameters() if p.grad is not None)
    assert g_grad > 0 and q_grad > 0 and "mi_categorical" in metrics
    model.zero_grad()
    model.g_loss((x, None))[0].backward()  # and the generator's step carries it: G's loss is adv - lambda * MI
    assert all(p.grad is not None for p in model.generator.parameters())
