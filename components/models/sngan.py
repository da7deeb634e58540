"""SN-GAN (Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks") with the
self-attention block of SAGAN (Zhang et al. 2019, "Self-Attention Generative Adversarial Networks").

Spectral norm on every discriminator layer (and, as in SAGAN, on the generator's), a self-attention block
in both networks at side `attention_at` (`attention: false` gives plain SN-GAN), the hinge loss
(`components.models.losses`), and SAGAN's two time-scale update rule (Heusel et al. 2017): Adam with
lr 1e-4 for G and 4e-4 for D, betas (0, 0.9), one D step per G step.
"""

from __future__ import annotations

import torch
from pydantic import Field

from components.data.shards import DatasetSpec
from components.models import losses
from components.models.base import Capabilities, Family, Phase
from components.models.gan import AdversarialModel, GANConfig
from components.models.layers import ConvDiscriminator, ConvGenerator


class SNGANConfig(GANConfig):
    attention: bool = True  # SAGAN's self-attention block in G and D
    attention_at: int = Field(16, ge=4)  # side (pixels) of the feature map the block attends over
    g_spectral_norm: bool = True  # spectral norm in the generator too (SAGAN); D always has it
    n_critic: int = Field(1, ge=1)  # discriminator steps per generator step
    lr: float = Field(1e-4, gt=0)  # generator learning rate (TTUR)
    d_lr: float | None = Field(4e-4, gt=0)  # discriminator learning rate (TTUR)
    beta1: float = Field(0.0, ge=0, lt=1)
    beta2: float = Field(0.9, ge=0, lt=1)


class SNGAN(AdversarialModel):
    capabilities = Capabilities(latent=True)

    def __init__(self, config: SNGANConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        at = config.attention_at if config.attention else None
        self.generator = ConvGenerator(config.latent_dim, config.g_channels, spec.channels, spec.resolution,
                                       attention_at=at, spectral=config.g_spectral_norm)
        self.discriminator = ConvDiscriminator(config.d_channels, spec.channels, spec.resolution, norm="spectral",
                                               attention_at=at)
        self.init_ema()

    def d_loss(self, batch):
        x, _ = batch
        with torch.no_grad():
            fake = self.fake(x.shape[0])
        l_real, l_fake = self.discriminator(x * 2 - 1), self.discriminator(fake)
        loss = losses.discriminator_loss("hinge", l_real, l_fake)
        return loss, {"d_loss": loss.detach(), "d_real": l_real.mean().detach(), "d_fake": l_fake.mean().detach()}

    def g_loss(self, batch):
        loss = losses.generator_loss("hinge", self.discriminator(self.fake(batch[0].shape[0])))
        return loss, {"g_loss": loss.detach()}

    def phases(self, optimizers) -> list[Phase]:
        return [Phase("D", "D", self.d_loss, list(self.discriminator.parameters()), repeat=self.config.n_critic),
                self.generator_phase(self.g_loss)]


FAMILY = Family(SNGANConfig, SNGAN, "SN-GAN with SAGAN self-attention, hinge loss and TTUR (Miyato 2018; Zhang 2019)",
                tiny={"latent_dim": 8, "g_channels": 4, "d_channels": 4, "attention_at": 8})
