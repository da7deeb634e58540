import torch
import torch.nn.functional as F

from components.models import build
from tests.models.test_contract import TINY, batch, spec


def _model(loss="non_saturating"):
    torch.manual_seed(0)
    return build("dcgan", {**TINY["dcgan"], "loss": loss}, spec())


def test_discriminator_loss_is_binary_cross_entropy_of_real_and_fake():
    model = _model()
    x = batch(spec())
    torch.manual_seed(1)
    loss, _ = model.d_loss(x)
    torch.manual_seed(1)
    with torch.no_grad():
        fake = model.fake(8)
    l_real, l_fake = model.discriminator(x[0] * 2 - 1), model.discriminator(fake)
    bce = F.binary_cross_entropy_with_logits(l_real, torch.ones(8)) + F.binary_cross_entropy_with_logits(l_fake, torch.zeros(8))
    assert torch.allclose(loss, bce, atol=1e-5)


def test_generator_losses_minimax_and_non_saturating():
    x = batch(spec())
    for kind in ("non_saturating", "minimax"):
        model = _model(kind)
        torch.manual_seed(2)
        loss, _ = model.g_loss(x)
        torch.manual_seed(2)
        d = torch.sigmoid(model.discriminator(model.fake(8)))
        expected = -torch.log(d).mean() if kind == "non_saturating" else torch.log(1 - d).mean()
        assert torch.allclose(loss, expected, atol=1e-5), kind


def test_generator_phase_reuses_the_batch_and_updates_only_the_generator():
    model = _model()
    d_phase, g_phase = model.phases(model.optimizers())
    assert (d_phase.name, g_phase.name) == ("D", "G")
    assert g_phase.uses_batch is False and d_phase.uses_batch is True
    g_ids = {id(p) for p in model.generator.parameters()}
    assert {id(p) for p in g_phase.parameters} == g_ids
    assert not g_ids & {id(p) for p in d_phase.parameters}


def test_samples_map_tanh_to_data_range():
    model = _model()
    s = model.sample(16)
    assert s.min() >= 0 and s.max() <= 1 and s.std() > 0
