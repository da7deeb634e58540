"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks") trained with the GAN objective of Goodfellow et al. 2014.

Generator: z -> 4x4 by a transposed conv, then stride-2 transposed convs doubling the side to the data
resolution, batch norm and ReLU inside, tanh out. Discriminator: stride-2 convs with LeakyReLU(0.2),
batch norm except on the first layer, down to 4x4, then a 4x4 conv to one logit. Adam(2e-4, beta1 0.5).

Losses, with l = D(x) the logit and sigma the logistic function (softplus(t) = log(1 + e^t)):
  D:  -log sigma(l_real) - log(1 - sigma(l_fake))       = softplus(-l_real) + softplus(l_fake)
  G, minimax (the original game):  log(1 - sigma(l_fake)) = -softplus(l_fake)   (saturates early on)
  G, non_saturating (Goodfellow 2014, section 3): -log sigma(l_fake) = softplus(-l_fake)
The generator's tanh output is mapped to the data range [0, 1]; the discriminator sees [-1, 1].
The networks are reused by the Wasserstein family (critic without batch norm or sigmoid).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import Family, GenerativeModel, ModelConfig, Phase, init_dcgan_weights


class DCGANConfig(ModelConfig):
    latent_dim: int = Field(100, ge=1)  # size of z ~ N(0, I)
    g_channels: int = Field(64, ge=1)  # generator channels at the last hidden layer (x2 per layer up)
    d_channels: int = Field(64, ge=1)  # discriminator channels at the first layer (x2 per layer down)
    loss: Literal["non_saturating", "minimax"] = "non_saturating"  # generator loss
    lr: float = Field(2e-4, gt=0)  # Adam learning rate, both networks
    beta1: float = Field(0.5, ge=0, lt=1)  # Adam beta1 (0.5 as in the paper)
    beta2: float = Field(0.999, ge=0, lt=1)  # Adam beta2
    batch_size: int = Field(128, ge=1)  # per-worker batch
    epochs: int = Field(10, ge=1)  # passes over the training split


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, out_channels: int, resolution: int):
        super().__init__()
        n_up = int(math.log2(resolution)) - 2  # 4x4 -> resolution
        width = channels * 2 ** (n_up - 1)
        layers = [nn.Unflatten(1, (latent_dim, 1, 1)),  # (B, z) -> (B, z, 1, 1)
                  nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, C, H, W) in [-1, 1]


class Discriminator(nn.Module):
    """DCGAN discriminator; batch_norm=False gives the WGAN-GP critic (Gulrajani et al. 2017, section 4)."""

    def __init__(self, channels: int, in_channels: int, resolution: int, batch_norm: bool = True):
        super().__init__()
        n_down = int(math.log2(resolution)) - 2  # resolution -> 4x4
        layers = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = channels
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(width * 2)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0), nn.Flatten()]  # (B, 1, 1, 1) -> (B, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (B,) logits / critic values


class DCGAN(GenerativeModel):
    critic_batch_norm = True

    def __init__(self, config: DCGANConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        self.generator = Generator(config.latent_dim, config.g_channels, spec.channels, spec.resolution)
        self.discriminator = Discriminator(config.d_channels, spec.channels, spec.resolution, self.critic_batch_norm)
        self.apply(init_dcgan_weights)

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        return (self.generator(z) + 1) / 2  # [-1, 1] -> data range [0, 1]

    def fake(self, n: int) -> torch.Tensor:
        """Generator output in the discriminator's range [-1, 1]."""
        return self.generator(torch.randn(n, self.config.latent_dim, device=self.device))

    # -- training ----------------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        return {
            "D": torch.optim.Adam(self.discriminator.parameters(), lr=self.config.lr, betas=betas),
            "G": torch.optim.Adam(self.generator.parameters(), lr=self.config.lr, betas=betas),
        }

    def d_loss(self, batch):
        x, _ = batch
        with torch.no_grad():
            fake = self.fake(x.shape[0])
        l_real, l_fake = self.discriminator(x * 2 - 1), self.discriminator(fake)
        loss = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()
        return loss, {"d_loss": loss.detach(), "d_real": torch.sigmoid(l_real).mean().detach(),
                      "d_fake": torch.sigmoid(l_fake).mean().detach()}

    def g_loss(self, batch):
        l_fake = self.discriminator(self.fake(batch[0].shape[0]))
        loss = F.softplus(-l_fake).mean() if self.config.loss == "non_saturating" else -F.softplus(l_fake).mean()
        return loss, {"g_loss": loss.detach()}

    def phases(self, optimizers: dict[str, torch.optim.Optimizer]) -> list[Phase]:
        return [
            Phase("D", "D", self.d_loss, list(self.discriminator.parameters())),
            Phase("G", "G", self.g_loss, list(self.generator.parameters()), uses_batch=False),
        ]


FAMILY = Family(DCGANConfig, DCGAN, "DCGAN, non-saturating or minimax generator loss")
