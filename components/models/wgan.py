"""WGAN (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", Algorithm 1) on the DCGAN networks.

The critic f has no sigmoid and is kept K-Lipschitz by clipping every weight to [-c, c] after each critic
step; it minimises L_critic = E[f(G(z))] - E[f(x)], the generator L_G = -E[f(G(z))]
(`components.models.losses`, "wasserstein"). RMSprop(5e-5), n_critic = 5 critic steps per generator
step, each on a fresh batch. The critic keeps DCGAN's batch norm, as in the paper's DCGAN experiments.
"""

from __future__ import annotations

import torch
from pydantic import Field

from components.data.shards import DatasetSpec
from components.models import losses
from components.models.base import Capabilities, Family, Phase
from components.models.gan import AdversarialModel, GANConfig


class WGANConfig(GANConfig):
    clip_value: float = Field(0.01, gt=0)  # c: critic weights are clipped to [-c, c]
    n_critic: int = Field(5, ge=1)  # critic steps per generator step
    lr: float = Field(5e-5, gt=0)  # RMSprop learning rate, both networks (d_lr: the critic's, if set)


class WGAN(AdversarialModel):
    capabilities = Capabilities(latent=True)

    def __init__(self, config: WGANConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        self.use_dcgan_networks()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"D": torch.optim.RMSprop(self.discriminator.parameters(), lr=c.d_lr or c.lr),
                "G": torch.optim.RMSprop(self.generator.parameters(), lr=c.lr)}

    def critic_loss(self, batch):
        x, _ = batch
        with torch.no_grad():
            fake = self.fake(x.shape[0])
        f_real, f_fake = self.discriminator(x * 2 - 1), self.discriminator(fake)
        loss = losses.discriminator_loss("wasserstein", f_real, f_fake)
        return loss, {"critic_loss": loss.detach(), "wasserstein_estimate": -loss.detach()}

    def g_loss(self, batch):
        loss = losses.generator_loss("wasserstein", self.discriminator(self.fake(batch[0].shape[0])))
        return loss, {"g_loss": loss.detach()}

    def clip(self) -> None:
        c = self.config.clip_value
        with torch.no_grad():
            for p in self.discriminator.parameters():
                p.clamp_(-c, c)

    def phases(self, optimizers) -> list[Phase]:
        return [Phase("critic", "D", self.critic_loss, list(self.discriminator.parameters()),
                      repeat=self.config.n_critic, after_step=self.clip),
                self.generator_phase(self.g_loss)]


FAMILY = Family(WGANConfig, WGAN, "WGAN with weight clipping (Arjovsky et al. 2017)", tiny={"latent_dim": 8, "g_channels": 4, "d_channels": 4})
