"""Losses shared by the families, each with its paper. Logits/critic values are (B,) tensors; every loss
returns a scalar to minimise. softplus(t) = log(1 + e^t), sigma the logistic function.

Adversarial objectives, as (discriminator loss, generator loss):
  non_saturating  Goodfellow et al. 2014, section 3:  D: -log sigma(l_real) - log(1 - sigma(l_fake))
                                                         = softplus(-l_real) + softplus(l_fake)
                                                      G: -log sigma(l_fake) = softplus(-l_fake)
  minimax         Goodfellow et al. 2014, eq. 1:      D as above;  G: log(1 - sigma(l_fake)) = -softplus(l_fake)
  wasserstein     Arjovsky et al. 2017, Algorithm 1:  D: E[f(G(z))] - E[f(x)];  G: -E[f(G(z))]
  hinge           Lim & Ye 2017; Miyato et al. 2018, eq. 16 / Zhang et al. 2019, eq. 3:
                                                      D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))];  G: -E[D(G(z))]
  least_squares   Mao et al. 2017, eq. 2 (a=0, b=c=1), as CycleGAN uses it (Zhu et al. 2017, section 4):
                                                      D: (E[(D(x) - 1)^2] + E[D(G(z))^2]) / 2;  G: E[(D(G(z)) - 1)^2]
Values may be (B,) or patch maps (B, 1, h, w) (PatchGAN): the means run over every element.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

Adversarial = Literal["non_saturating", "minimax", "wasserstein", "hinge", "least_squares"]


def discriminator_loss(kind: Adversarial, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's (critic's) loss on real and generated logits / critic values."""
    if kind in ("non_saturating", "minimax"):
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "least_squares":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    raise ValueError(f"unknown adversarial loss {kind!r}")


def generator_loss(kind: Adversarial, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's logits / critic values of generated images."""
    if kind == "non_saturating":
        return F.softplus(-fake).mean()
    if kind == "minimax":
        return -F.softplus(fake).mean()
    if kind in ("wasserstein", "hinge"):
        return -fake.mean()
    if kind == "least_squares":
        return (fake - 1).pow(2).mean()
    raise ValueError(f"unknown adversarial loss {kind!r}")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): E[(||grad_x f(x_hat)||_2 - 1)^2] on
    x_hat = eps real + (1 - eps) fake with ONE eps ~ U[0, 1] PER SAMPLE (not per pixel)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)  # (B, 1, 1, 1): per sample
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)  # (B, C, H, W) -> (B,)
    return ((norms - 1) ** 2).mean()


def kl_diag_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, closed form (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def mutual_information_bound(cat_logits: torch.Tensor, cat_code: torch.Tensor, cont_mean: torch.Tensor,
                             cont_log_std: torch.Tensor, cont_code: torch.Tensor) -> dict[str, torch.Tensor]:
    """InfoGAN's variational lower bound (Chen et al. 2016, Lemma 5.1) on I(c; G(z, c)), in nats:
        L_I = E[log Q(c | G(z, c))] + H(c) <= I(c; G(z, c))
    for a uniform categorical code c_cat in {0..K-1} (H = log K) and continuous codes c_j ~ U[-1, 1]
    (H = log 2 each) under a factored Gaussian Q. cat_logits (B, K), cat_code (B,), cont_* (B, J).
    Returns {"categorical": L_I of the categorical code, "continuous": L_I summed over continuous codes}."""
    out = {}
    if cat_logits is not None and cat_logits.shape[1] > 0:
        log_q = -F.cross_entropy(cat_logits, cat_code)
        out["categorical"] = log_q + math.log(cat_logits.shape[1])
    if cont_mean is not None and cont_mean.shape[1] > 0:
        log_q = (-0.5 * ((cont_code - cont_mean) / cont_log_std.exp()) ** 2 - cont_log_std
                 - 0.5 * math.log(2 * math.pi)).sum(1).mean()
        out["continuous"] = log_q + cont_mean.shape[1] * math.log(2.0)
    return out
