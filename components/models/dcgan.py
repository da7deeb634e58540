"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks") trained with the GAN objective of Goodfellow et al. 2014.

Networks: `components.models.layers.DCGANGenerator` / `DCGANDiscriminator`. Adam(2e-4, beta1 0.5).
Losses (`components.models.losses`): D minimises softplus(-l_real) + softplus(l_fake); G the
non-saturating softplus(-l_fake) (Goodfellow 2014, section 3) or the minimax -softplus(l_fake).
The generator's tanh output is mapped to the data range [0, 1]; the discriminator sees [-1, 1].
"""

from __future__ import annotations

from typing import Literal

import torch

from components.data.shards import DatasetSpec
from components.models import losses
from components.models.base import Capabilities, Family, Phase
from components.models.gan import AdversarialModel, GANConfig


class DCGANConfig(GANConfig):
    loss: Literal["non_saturating", "minimax"] = "non_saturating"  # generator loss


class DCGAN(AdversarialModel):
    capabilities = Capabilities(latent=True)

    def __init__(self, config: DCGANConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        self.use_dcgan_networks()

    def d_loss(self, batch):
        x, _ = batch
        with torch.no_grad():
            fake = self.fake(x.shape[0])
        l_real, l_fake = self.discriminator(x * 2 - 1), self.discriminator(fake)
        loss = losses.discriminator_loss(self.config.loss, l_real, l_fake)
        return loss, {"d_loss": loss.detach(), "d_real": torch.sigmoid(l_real).mean().detach(),
                      "d_fake": torch.sigmoid(l_fake).mean().detach()}

    def g_loss(self, batch):
        loss = losses.generator_loss(self.config.loss, self.discriminator(self.fake(batch[0].shape[0])))
        return loss, {"g_loss": loss.detach()}

    def phases(self, optimizers: dict[str, torch.optim.Optimizer]) -> list[Phase]:
        return [Phase("D", "D", self.d_loss, list(self.discriminator.parameters())), self.generator_phase(self.g_loss)]


FAMILY = Family(DCGANConfig, DCGAN, "DCGAN, non-saturating or minimax generator loss", tiny={"latent_dim": 8, "g_channels": 4, "d_channels": 4})
