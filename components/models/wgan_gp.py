"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1) on the DCGAN
networks: the Wasserstein critic loss plus a gradient penalty on interpolates x_hat = eps x + (1 - eps) G(z),
ONE eps ~ U[0, 1] PER SAMPLE (`components.models.losses.gradient_penalty`):
    L_critic = E[f(G(z))] - E[f(x)] + lambda E[(||grad f(x_hat)||_2 - 1)^2],   L_G = -E[f(G(z))].
No batch norm in the critic (the penalty is per sample); Adam(1e-4, betas (0, 0.9)), n_critic = 5.
"""

from __future__ import annotations

import torch
from pydantic import Field

from components.data.shards import DatasetSpec
from components.models import losses
from components.models.base import Capabilities, Family, Phase
from components.models.gan import AdversarialModel, GANConfig


class WGANGPConfig(GANConfig):
    gp_weight: float = Field(10.0, ge=0)  # lambda of the gradient penalty
    n_critic: int = Field(5, ge=1)  # critic steps per generator step
    lr: float = Field(1e-4, gt=0)  # Adam learning rate, both networks (d_lr: the critic's, if set)
    beta1: float = Field(0.0, ge=0, lt=1)  # Adam beta1 (0 in the paper)
    beta2: float = Field(0.9, ge=0, lt=1)  # Adam beta2 (0.9 in the paper)


class WGANGP(AdversarialModel):
    capabilities = Capabilities(latent=True)
    eager_children = ("discriminator",)  # the gradient penalty differentiates through the critic twice

    def __init__(self, config: WGANGPConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        self.use_dcgan_networks(batch_norm=False)

    def critic_loss(self, batch):
        x, _ = batch
        with torch.no_grad():
            fake = self.fake(x.shape[0])
        real = x * 2 - 1
        f_real, f_fake = self.discriminator(real), self.discriminator(fake)
        w = losses.discriminator_loss("wasserstein", f_real, f_fake)
        gp = losses.gradient_penalty(self.discriminator, real, fake)
        loss = w + self.config.gp_weight * gp
        return loss, {"critic_loss": loss.detach(), "wasserstein_estimate": -w.detach(), "gradient_penalty": gp.detach()}

    def g_loss(self, batch):
        loss = losses.generator_loss("wasserstein", self.discriminator(self.fake(batch[0].shape[0])))
        return loss, {"g_loss": loss.detach()}

    def phases(self, optimizers) -> list[Phase]:
        return [Phase("critic", "D", self.critic_loss, list(self.discriminator.parameters()), repeat=self.config.n_critic),
                self.generator_phase(self.g_loss)]


FAMILY = Family(WGANGPConfig, WGANGP, "WGAN-GP with a per-sample gradient penalty (Gulrajani et al. 2017)",
                tiny={"latent_dim": 8, "g_channels": 4, "d_channels": 4})
