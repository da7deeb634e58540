"""Class-conditional GAN: a generator with conditional batch norm (de Vries et al. 2017; Dumoulin et al.
2017: per-class scale and shift after every batch norm) and a projection discriminator (Miyato & Koyama
2018, "cGANs with Projection Discriminator", eq. 3: D(x, y) = psi(phi(x)) + <embed(y), phi(x)>) with
spectral norm (Miyato et al. 2018). Hinge loss by default (Miyato & Koyama 2018, section 5), or the
non-saturating loss of Goodfellow et al. 2014 (`components.models.losses`). Optionally (`aux_weight` > 0)
the auxiliary classifier of AC-GAN (Odena et al. 2017, eq. 2-3): a class head on the discriminator's trunk,
trained on real images, whose cross-entropy on generated images (for their requested class) the generator
minimises; at a laptop budget the projection alone leaves the label unused (docs/learning.md).

Generated images in a training step take the real batch's labels, so fakes follow the data's class
frequencies; `sample(n, labels)` draws the requested classes.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models import losses
from components.models.base import Capabilities, Family, Phase
from components.models.gan import AdversarialModel, GANConfig
from components.models.layers import ConvDiscriminator, ConvGenerator, init_dcgan_weights


class CGANConfig(GANConfig):
    loss: Literal["hinge", "non_saturating"] = "hinge"  # adversarial loss
    d_norm: Literal["spectral", "batch", "none"] = "spectral"  # normalization in the discriminator
    aux_weight: float = Field(0.0, ge=0)  # AC-GAN auxiliary classification loss weight; 0: projection only
    aux_on_fake: bool = True  # D's class head also learns generated images' requested class (Odena et al. eq. 2-3)


class CGAN(AdversarialModel):
    capabilities = Capabilities(labels=True, latent=True)

    def __init__(self, config: CGANConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        k = spec.num_classes
        self.generator = ConvGenerator(config.latent_dim, config.g_channels, spec.channels, spec.resolution, num_classes=k)
        self.generator.apply(init_dcgan_weights)  # the discriminator keeps torch's init (spectral norm rescales it)
        self.discriminator = ConvDiscriminator(config.d_channels, spec.channels, spec.resolution,
                                               norm=config.d_norm, num_classes=k)
        self.classifier = nn.Linear(self.discriminator.feature_dim, k) if config.aux_weight > 0 else None
        self.init_ema()

    def decode_latent(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("cgan is conditional: decode_latent needs labels")
        return (self.sampler(z, labels.to(z.device)) + 1) / 2

    def _fake(self, y: torch.Tensor) -> torch.Tensor:
        return self.generator(torch.randn(y.shape[0], self.config.latent_dim, device=y.device), y)

    def d_loss(self, batch):
        x, y = batch
        with torch.no_grad():
            fake = self._fake(y)
        h_real, h_fake = self.discriminator.features(x * 2 - 1), self.discriminator.features(fake)
        l_real, l_fake = self.discriminator(None, y, h=h_real), self.discriminator(None, y, h=h_fake)
        loss = losses.discriminator_loss(self.config.loss, l_real, l_fake)
        metrics = {"d_loss": loss.detach(), "d_real": l_real.mean().detach(), "d_fake": l_fake.mean().detach()}
        if self.classifier is not None:  # AC-GAN (Odena et al. 2017, eq. 2-3): D maximises L_S + L_C, where
            # L_C = log P(C = c | X_real) + log P(C = c | X_fake): the class head learns real and generated images
            aux_real = F.cross_entropy(self.classifier(h_real), y)
            aux_fake = F.cross_entropy(self.classifier(h_fake), y)
            loss = loss + self.config.aux_weight * (aux_real + (aux_fake if self.config.aux_on_fake else 0))
            metrics["aux_real"], metrics["aux_fake_d"] = aux_real.detach(), aux_fake.detach()
        return loss, metrics

    def g_loss(self, batch):
        _, y = batch
        fake = self._fake(y)
        h = self.discriminator.features(fake)
        loss = losses.generator_loss(self.config.loss, self.discriminator(None, y, h=h))
        metrics = {"g_loss": loss.detach()}
        if self.classifier is not None:  # ... and the generator makes its images classified as requested
            aux = F.cross_entropy(self.classifier(h), y)
            loss = loss + self.config.aux_weight * aux
            metrics["aux_fake"] = aux.detach()
        return loss, metrics

    def phases(self, optimizers) -> list[Phase]:
        return [Phase("D", "D", self.d_loss, self.d_parameters()), self.generator_phase(self.g_loss)]

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters()) + (list(self.classifier.parameters()) if self.classifier else [])

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"D": torch.optim.Adam(self.d_parameters(), lr=c.d_lr or c.lr, betas=(c.beta1, c.beta2)),
                "G": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}


FAMILY = Family(CGANConfig, CGAN, "Conditional GAN: conditional batch norm G, projection D with spectral norm, hinge loss",
                tiny={"latent_dim": 8, "g_channels": 4, "d_channels": 4})
