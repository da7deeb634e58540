"""The shared losses against hand-computed values (components/models/losses.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from components.models import losses

REAL, FAKE = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])


def test_hinge_loss_by_hand():
    # D: mean(relu(1 - [2, .5])) + mean(relu(1 + [-2, .5])) = mean(0, .5) + mean(0, 1.5) = .25 + .75
    assert losses.discriminator_loss("hinge", REAL, FAKE).item() == pytest.approx(1.0)
    assert losses.generator_loss("hinge", FAKE).item() == pytest.approx(0.75)  # -mean(fake)
    # a discriminator beyond the margins pays nothing
    assert losses.discriminator_loss("hinge", torch.tensor([3.0]), torch.tensor([-4.0])).item() == 0.0


def test_gan_losses_are_the_cross_entropies_of_goodfellow_2014():
    bce = F.binary_cross_entropy_with_logits
    expected_d = bce(REAL, torch.ones(2)) + bce(FAKE, torch.zeros(2))
    for kind in ("non_saturating", "minimax"):
        assert losses.discriminator_loss(kind, REAL, FAKE).item() == pytest.approx(expected_d.item())
    d = torch.sigmoid(FAKE)
    assert losses.generator_loss("non_saturating", FAKE).item() == pytest.approx((-torch.log(d)).mean().item())
    assert losses.generator_loss("minimax", FAKE).item() == pytest.approx(torch.log(1 - d).mean().item())


def test_wasserstein_losses():
    assert losses.discriminator_loss("wasserstein", REAL, FAKE).item() == pytest.approx(FAKE.mean() - REAL.mean())
    assert losses.generator_loss("wasserstein", FAKE).item() == pytest.approx(-FAKE.mean().item())


def test_least_squares_losses_by_hand():
    # D: ((2-1)^2 + (.5-1)^2)/2 = .625 and ((-2)^2 + .5^2)/2 = 2.125, halved: 1.375; G: ((-3)^2 + (-.5)^2)/2 = 4.625
    assert losses.discriminator_loss("least_squares", REAL, FAKE).item() == pytest.approx(1.375)
    assert losses.generator_loss("least_squares", FAKE).item() == pytest.approx(4.625)
    patches = torch.ones(2, 1, 3, 3)  # PatchGAN maps: a perfect "real" everywhere costs G nothing
    assert losses.generator_loss("least_squares", patches).item() == 0.0


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        losses.generator_loss("softmax", FAKE)


def test_mutual_information_bound_on_known_cases():
    """Q that recovers the categorical code exactly: L_I = H(c) = log K (the bound is tight); a uniform Q
    learns nothing: L_I = 0. Continuous: Q with the true code as mean and std 1/sqrt(2 pi) has density 1 at
    the code, so E[log Q] = 0 and L_I = H(U[-1, 1]) = log 2 per code."""
    k, n, j = 4, 32, 3
    cat = torch.arange(n) % k
    perfect = losses.mutual_information_bound(100 * F.one_hot(cat, k).float(), cat, None, None, None)
    assert perfect["categorical"].item() == pytest.approx(math.log(k), abs=1e-4)
    uniform = losses.mutual_information_bound(torch.zeros(n, k), cat, None, None, None)
    assert uniform["categorical"].item() == pytest.approx(0.0, abs=1e-6)
    code = torch.rand(n, j) * 2 - 1
    log_std = torch.full((n, j), -0.5 * math.log(2 * math.pi))
    cont = losses.mutual_information_bound(None, None, code, log_std, code)
    assert cont["continuous"].item() == pytest.approx(j * math.log(2), abs=1e-5)
    assert "categorical" not in cont


def test_kl_of_the_prior_to_itself_is_zero():
    assert torch.equal(losses.kl_diag_gaussian(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))
