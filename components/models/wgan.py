"""Wasserstein GANs on the DCGAN networks.

WGAN (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", Algorithm 1): the critic f has no sigmoid
and is kept K-Lipschitz by clipping every weight to [-c, c] after each critic step; it maximises
E[f(x)] - E[f(G(z))], i.e. minimises  L_critic = E[f(G(z))] - E[f(x)],  and the generator minimises
L_G = -E[f(G(z))]. RMSprop(5e-5), n_critic = 5 critic steps per generator step, each on a fresh batch.

WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1) replaces the
clipping by a gradient penalty on interpolates x_hat = eps x + (1 - eps) G(z), with ONE eps ~ U[0, 1]
PER SAMPLE (not per pixel):  L_critic = E[f(G(z))] - E[f(x)] + lambda E[(||grad f(x_hat)||_2 - 1)^2].
No batch norm in the critic (the penalty is per sample); Adam(1e-4, betas (0, 0.9)), n_critic = 5.
"""

from __future__ import annotations

import torch
from pydantic import Field

from components.data.shards import DatasetSpec
from components.models.base import Family, Phase
from components.models.dcgan import DCGAN, DCGANConfig


class WGANConfig(DCGANConfig):
    clip_value: float = Field(0.01, gt=0)  # c: critic weights are clipped to [-c, c]
    n_critic: int = Field(5, ge=1)  # critic steps per generator step
    lr: float = Field(5e-5, gt=0)  # RMSprop learning rate, both networks
    loss: str = Field("wasserstein", pattern="^wasserstein$")  # fixed: the Wasserstein objective


class WGANGPConfig(DCGANConfig):
    gp_weight: float = Field(10.0, ge=0)  # lambda of the gradient penalty
    n_critic: int = Field(5, ge=1)  # critic steps per generator step
    lr: float = Field(1e-4, gt=0)  # Adam learning rate, both networks
    beta1: float = Field(0.0, ge=0, lt=1)  # Adam beta1 (0 in the paper)
    beta2: float = Field(0.9, ge=0, lt=1)  # Adam beta2 (0.9 in the paper)
    loss: str = Field("wasserstein", pattern="^wasserstein$")  # fixed: the Wasserstein objective


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x f(x_hat)||_2 - 1)^2] on x_hat = eps real + (1 - eps) fake, one eps per sample."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)  # (B, 1, 1, 1): per sample
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)  # (B, C, H, W) -> (B,)
    return ((norms - 1) ** 2).mean()


class WGAN(DCGAN):
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.lr
        return {"D": torch.optim.RMSprop(self.discriminator.parameters(), lr=lr),
                "G": torch.optim.RMSprop(self.generator.parameters(), lr=lr)}

    def critic_loss(self, batch):
        x, _ = batch
        with torch.no_grad():
            fake = self.fake(x.shape[0])
        f_real, f_fake = self.discriminator(x * 2 - 1).mean(), self.discriminator(fake).mean()
        loss = f_fake - f_real
        return loss, {"critic_loss": loss.detach(), "wasserstein_estimate": (f_real - f_fake).detach()}

    def g_loss(self, batch):
        loss = -self.discriminator(self.fake(batch[0].shape[0])).mean()
        return loss, {"g_loss": loss.detach()}

    def clip(self) -> None:
        c = self.config.clip_value
        with torch.no_grad():
            for p in self.discriminator.parameters():
                p.clamp_(-c, c)

    def phases(self, optimizers) -> list[Phase]:
        return [
            Phase("critic", "D", self.critic_loss, list(self.discriminator.parameters()),
                  repeat=self.config.n_critic, after_step=self.clip),
            Phase("G", "G", self.g_loss, list(self.generator.parameters()), uses_batch=False),
        ]


class WGANGP(WGAN):
    critic_batch_norm = False

    def __init__(self, config: WGANGPConfig, spec: DatasetSpec):
        super().__init__(config, spec)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas, lr = (self.config.beta1, self.config.beta2), self.config.lr
        return {"D": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
                "G": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)}

    def critic_loss(self, batch):
        x, _ = batch
        with torch.no_grad():
            fake = self.fake(x.shape[0])
        real = x * 2 - 1
        f_real, f_fake = self.discriminator(real).mean(), self.discriminator(fake).mean()
        gp = gradient_penalty(self.discriminator, real, fake)
        loss = f_fake - f_real + self.config.gp_weight * gp
        return loss, {"critic_loss": loss.detach(), "wasserstein_estimate": (f_real - f_fake).detach(),
                      "gradient_penalty": gp.detach()}

    def phases(self, optimizers) -> list[Phase]:
        critic, gen = super().phases(optimizers)
        critic.after_step = None  # the penalty replaces clipping
        return [critic, gen]


WGAN_FAMILY = Family(WGANConfig, WGAN, "WGAN with weight clipping (Arjovsky et al. 2017)")
WGAN_GP_FAMILY = Family(WGANGPConfig, WGANGP, "WGAN-GP with a per-sample gradient penalty (Gulrajani et al. 2017)")
