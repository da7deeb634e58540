"""The GAN base the adversarial families build on (dcgan, wgan, wgan_gp, sngan, infogan, cgan): a generator and a
discriminator, z ~ N(0, I), Adam with separate learning rates (TTUR, Heusel et al. 2017), and an optional
exponential moving average of the generator's weights (Yazici et al. 2019) that sampling then uses.
Not a family itself: each family file sets the networks and the losses.
"""

from __future__ import annotations

import copy

import torch
from pydantic import Field
from torch import nn

from components.models.base import GenerativeModel, ModelConfig, Phase
from components.models.layers import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights


class GANConfig(ModelConfig):
    latent_dim: int = Field(100, ge=1)  # size of z ~ N(0, I)
    g_channels: int = Field(64, ge=1)  # generator channels at the last hidden layer (x2 per layer up)
    d_channels: int = Field(64, ge=1)  # discriminator channels at the first layer (x2 per layer down)
    lr: float = Field(2e-4, gt=0)  # generator learning rate (and the discriminator's when d_lr is null)
    d_lr: float | None = Field(None, gt=0)  # discriminator learning rate (TTUR); null: lr
    beta1: float = Field(0.5, ge=0, lt=1)  # Adam beta1
    beta2: float = Field(0.999, ge=0, lt=1)  # Adam beta2
    ema_decay: float = Field(0.0, ge=0, lt=1)  # EMA of generator weights for sampling; 0: off
    g_steps: int = Field(1, ge=1)  # generator steps per discriminator step, each on fresh noise (Goodfellow et al.
    # 2014, Algorithm 1, has k >= 1 D steps per G step; 2 G steps is common DCGAN practice where D wins early)
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(10, ge=1)


class AdversarialModel(GenerativeModel):
    """Holds `generator` and `discriminator` (set by the family) and, with ema_decay > 0, `generator_ema`,
    a copy whose weights follow p_ema <- d p_ema + (1 - d) p after every generator step (batch-norm
    statistics copied). The EMA copy is part of the state_dict, so checkpoints and exports keep it.
    Generator weights are identical on every DDP rank (averaged gradients), hence so is the EMA."""

    generator: nn.Module
    discriminator: nn.Module

    def use_dcgan_networks(self, batch_norm: bool = True) -> None:
        """DCGAN's generator and discriminator (batch_norm=False: the WGAN-GP critic), DCGAN's init, then the EMA."""
        c, spec = self.config, self.spec
        self.generator = DCGANGenerator(c.latent_dim, c.g_channels, spec.channels, spec.resolution)
        self.discriminator = DCGANDiscriminator(c.d_channels, spec.channels, spec.resolution, batch_norm)
        self.apply(init_dcgan_weights)
        self.init_ema()

    def init_ema(self) -> None:
        if self.config.ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.config.ema_decay <= 0:
            return
        d = self.config.ema_decay
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            p_ema.lerp_(p.detach(), 1 - d)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            b_ema.copy_(b)

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples: the EMA copy when there is one."""
        return self.generator_ema if self.config.ema_decay > 0 else self.generator

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)

    def decode_latent(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Unconditional generators: tanh output [-1, 1] -> data range [0, 1]."""
        return (self.sampler(z) + 1) / 2

    def fake(self, n: int) -> torch.Tensor:
        """n generator outputs for fresh noise, in the discriminator's range [-1, 1] (training)."""
        return self.generator(torch.randn(n, self.config.latent_dim, device=self.device))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return {"D": torch.optim.Adam(self.discriminator.parameters(), lr=c.d_lr or c.lr, betas=betas),
                "G": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=betas)}

    def generator_phase(self, loss) -> Phase:
        return Phase("G", "G", loss, list(self.generator.parameters()), uses_batch=False,
                     repeat=self.config.g_steps, after_step=self.update_ema if self.config.ema_decay > 0 else None)

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latent(n, labels, generator)
