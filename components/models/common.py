"""Bases the families build on, so that no family file imports another:

  GANConfig / AdversarialModel  a generator and a discriminator, z ~ N(0, I), Adam with separate learning
                                rates (TTUR, Heusel et al. 2017), and an optional exponential moving average
                                of the generator's weights (Yazici et al. 2019) that sampling then uses.
  VAEConfig / GaussianVAE       diagonal-Gaussian encoder, reparameterization, ELBO and IWAE bound
                                (Kingma & Welling 2014; Burda et al. 2016), optionally conditioned on a label.
  PixelCNNConfig / PixelCNNBase gated (van den Oord et al. 2016b) or masked (2016a) PixelCNN with an exact
                                likelihood and pixel-by-pixel sampling, optionally conditioned on a label.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import GenerativeModel, ModelConfig, Phase
from components.models.layers import (
    DCGANDiscriminator,
    DCGANGenerator,
    GatedStack,
    MaskedConv2d,
    init_dcgan_weights,
    vae_networks,
)
from components.models.losses import kl_diag_gaussian


# -- adversarial ---------------------------------------------------------------------------------------
class GANConfig(ModelConfig):
    latent_dim: int = Field(100, ge=1)  # size of z ~ N(0, I)
    g_channels: int = Field(64, ge=1)  # generator channels at the last hidden layer (x2 per layer up)
    d_channels: int = Field(64, ge=1)  # discriminator channels at the first layer (x2 per layer down)
    lr: float = Field(2e-4, gt=0)  # generator learning rate (and the discriminator's when d_lr is null)
    d_lr: float | None = Field(None, gt=0)  # discriminator learning rate (TTUR); null: lr
    beta1: float = Field(0.5, ge=0, lt=1)  # Adam beta1
    beta2: float = Field(0.999, ge=0, lt=1)  # Adam beta2
    ema_decay: float = Field(0.0, ge=0, lt=1)  # EMA of generator weights for sampling; 0: off
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
                     after_step=self.update_ema if self.config.ema_decay > 0 else None)

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latent(n, labels, generator)


# -- variational autoencoders -----------------------------------------------------------------------------
class VAEConfig(ModelConfig):
    arch: Literal["mlp", "conv"] = "mlp"  # mlp: the lecture's 784-400-20 design; conv: strided convs
    hidden_dim: int = Field(400, ge=1)  # mlp hidden width (conv: width of the dense layer)
    latent_dim: int = Field(20, ge=1)  # size of z
    kl_weight: float = Field(1.0, ge=0)  # beta: 1 is the VAE, > 1 the beta-VAE
    likelihood: Literal["auto", "bernoulli", "gaussian"] = "auto"  # auto: bernoulli iff the data is binary
    conv_channels: int = Field(32, ge=1)  # conv: channels of the first conv layer (doubles per layer)
    lr: float = Field(1e-3, gt=0)  # Adam learning rate
    batch_size: int = Field(128, ge=1)
    epochs: int = Field(10, ge=1)


class GaussianVAE(GenerativeModel):
    """Encoder q(z | x[, y]) = N(mu, diag sigma^2), prior N(0, I), decoder p(x | z[, y]); `conditional`
    appends a one-hot label to the encoder's features and to z (Sohn et al. 2015). Likelihoods:
      bernoulli: exact for binary data (dSprites, binarized MNIST); logits out of the decoder.
      gaussian:  N(x; mu(z), sigma^2) with one learned sigma, on uniformly dequantized pixels (x + u) / 256,
                 u ~ U[0, 1) (Theis et al. 2016), so the bound is on discrete 8-bit data:
                 log P(x) >= E_u[log p(x_deq)] - D log 256.
    The loss is the negative ELBO per image, summed over pixels and averaged over the batch; `kl_weight`
    (beta, Higgins et al. 2017) multiplies that per-image KL and is not rescaled by batch or dataset size."""

    conditional = False

    def __init__(self, config: VAEConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        lik = config.likelihood
        if lik == "auto":
            lik = "bernoulli" if spec.binary else "gaussian"
        if lik == "bernoulli" and not spec.binary:
            raise ValueError(f"models.{type(self).__name__.lower()}.likelihood: bernoulli needs binary data and "
                             f"{spec.name} is not binary; "
                             "use gaussian or set data.binarize: true")
        self.likelihood = lik
        self.dim = spec.channels * spec.resolution**2
        self.cond_dim = spec.num_classes if self.conditional else 0
        self.encoder, self.to_stats, self.decoder = vae_networks(
            config.arch, spec.channels, spec.resolution, config.hidden_dim, config.latent_dim,
            config.conv_channels, self.cond_dim)
        self.log_sigma = nn.Parameter(torch.zeros(())) if lik == "gaussian" else None

    def _onehot(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: pass the images' labels")
        return F.one_hot(y.to(self.device).long(), self.cond_dim).float()  # (B,) -> (B, K)

    def _with(self, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return h if c is None else torch.cat([h, c], 1)

    # -- model ---------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._with(self.encoder(x), self._onehot(labels, x.shape[0]))
        mu, logvar = self.to_stats(h).chunk(2, dim=1)  # (B, 2d) -> 2 x (B, d)
        return mu, logvar

    def decoder_out(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self._with(z, self._onehot(labels, z.shape[0])))

    def decode_latent(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.decoder_out(z, labels)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out.clamp(0, 1)

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample_latent(n, labels, generator)

    def _dequantize(self, x: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return x
        return (x * 255.0 + torch.rand_like(x)) / 256.0

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x | z[, y]) per row, summed over pixels; x must already be dequantized for gaussian."""
        out = self.decoder_out(z, labels)
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        var = torch.exp(2 * self.log_sigma)
        ll = -0.5 * ((x - out) ** 2 / var + 2 * self.log_sigma + math.log(2 * math.pi))
        return ll.flatten(1).sum(1)

    def elbo_terms(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|z) with one reparameterized z, KL) per image, in nats (continuous for gaussian)."""
        xq = self._dequantize(x)
        mu, logvar = self.encode(xq, labels)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterization trick
        return self.log_px_given_z(xq, z, labels), kl_diag_gaussian(mu, logvar)

    def _discrete_offset(self) -> float:
        """-D log 256 converts a density on [0, 1]^D into a probability of 8-bit pixels (gaussian only)."""
        return 0.0 if self.likelihood == "bernoulli" else -self.dim * math.log(256.0)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, labels: torch.Tensor | None = None, n_samples: int = 1) -> torch.Tensor:
        """Per-image lower bound on log P(x[ | y]) in nats: the ELBO for n_samples=1, else the IWAE bound
        log (1/K) sum_k p(x, z_k) / q(z_k | x) (Burda et al. 2016)."""
        xq = self._dequantize(x)
        mu, logvar = self.encode(xq, labels)
        std = torch.exp(0.5 * logvar)
        if n_samples == 1:
            z = mu + std * torch.randn_like(mu)
            return self.log_px_given_z(xq, z, labels) - kl_diag_gaussian(mu, logvar) + self._discrete_offset()
        log_w = []
        for _ in range(n_samples):
            eps = torch.randn_like(mu)
            z = mu + std * eps
            log_q = (-0.5 * (eps**2 + logvar + math.log(2 * math.pi))).sum(1)
            log_p = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(1)
            log_w.append(self.log_px_given_z(xq, z, labels) + log_p - log_q)
        return torch.logsumexp(torch.stack(log_w), 0) - math.log(n_samples) + self._discrete_offset()

    # -- training ------------------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def phases(self, optimizers: dict[str, torch.optim.Optimizer]) -> list[Phase]:
        def loss(batch):
            x, y = batch
            rec, kl = self.elbo_terms(x, y if self.conditional else None)
            neg_elbo = -(rec - kl).mean() - self._discrete_offset()
            objective = -(rec - self.config.kl_weight * kl).mean()  # beta-weighted, per image
            return objective, {"neg_elbo": neg_elbo.detach(), "rec": -rec.mean().detach(), "kl": kl.mean().detach()}

        return [Phase("elbo", "adam", loss, list(self.parameters()))]


# -- autoregressive ----------------------------------------------------------------------------------------
class PixelCNNConfig(ModelConfig):
    arch: Literal["gated", "masked"] = "gated"  # gated: no blind spot (2016b); masked: the original (2016a)
    channels: int = Field(16, ge=1)  # feature maps per layer
    layers: int = Field(5, ge=1)  # gated layers (or mask-B layers) after the first
    kernel: int = Field(3, ge=3)  # odd kernel size of the gated layers / mask-B convs
    output: Literal["auto", "bernoulli", "softmax"] = "auto"  # auto: bernoulli iff the data is binary
    lr: float = Field(1e-3, gt=0)  # Adam learning rate
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(5, ge=1)


class PixelCNNBase(GenerativeModel):
    """p(x[ | y]) = prod_i p(x_i | x_<i[, y]) in raster order; the family files (pixelcnn, cpixelcnn) set
    `conditional` and the capabilities. Output per pixel and channel: one Bernoulli logit for binary data,
    else a 256-way softmax over 8-bit values, channels conditionally independent given the previous pixels.
    A conditional model adds a class embedding to every layer's pre-activations (gated: both stacks' gates,
    van den Oord et al. 2016b eq. 4; masked: a bias per layer), the same at every position."""

    conditional = False

    def __init__(self, config: PixelCNNConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        out = config.output if config.output != "auto" else ("bernoulli" if spec.binary else "softmax")
        if out == "bernoulli" and not spec.binary:
            raise ValueError(f"models.{type(self).__name__.lower()}.output: bernoulli needs binary data and "
                             f"{spec.name} is not binary; "
                             "use softmax or set data.binarize: true")
        self.output, self.c = out, spec.channels
        self.levels = 1 if out == "bernoulli" else 256
        ch, k = config.channels, config.kernel
        classes = spec.num_classes if self.conditional else 0
        if config.arch == "gated":
            self.gated = GatedStack(spec.channels, ch, config.layers, k, classes)
        else:
            self.stem = MaskedConv2d("A", spec.channels, ch, 7, padding=3)
            self.stack = nn.ModuleList([MaskedConv2d("B", ch, ch, k, padding=k // 2) for _ in range(config.layers)])
            if classes:  # one label bias per layer (stem, then each mask-B conv)
                self.label_bias = nn.ModuleList([nn.Embedding(classes, ch) for _ in range(config.layers + 1)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 1), nn.ReLU(), nn.Conv2d(ch, self.c * self.levels, 1))

    def _labels(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: pass the images' labels")
        return y.to(self.device).long()

    def logits(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel output for images x in [0, 1]: (B, C, H, W) -> (B, C, L, H, W), L = 1 or 256 levels;
        the output at (i, j) depends on x only through pixels before (i, j) in raster order (and on the
        labels (B,) of a conditional model)."""
        inp, y = x * 2 - 1, self._labels(labels)
        if self.config.arch == "gated":
            h = self.gated(inp, y)
        else:
            h = self.stem(inp)
            for i, conv in enumerate([None, *self.stack]):
                h = h if conv is None else conv(F.relu(h))
                if y is not None:
                    h = h + self.label_bias[i](y)[:, :, None, None]  # (B, ch) -> (B, ch, 1, 1), every position
        b, _, height, width = x.shape
        return self.head(h).reshape(b, self.c, self.levels, height, width)  # (B, C*L, H, W) -> (B, C, L, H, W)

    def _log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x[ | y]) per image in nats, summed over pixels and channels."""
        out = self.logits(x, labels)
        if self.output == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out[:, :, 0], x, reduction="none").flatten(1).sum(1)
        target = (x * 255).round().long()  # (B, C, H, W) 8-bit values
        return -F.cross_entropy(out.transpose(1, 2), target, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, labels: torch.Tensor | None = None, n_samples: int = 1) -> torch.Tensor:
        """Exact per-image log-likelihood log p(x[ | y]) in nats (n_samples is for bounds and ignored)."""
        return self._log_prob(x, labels)

    @property
    def receptive_rows(self) -> int:
        """How many rows above a pixel its prediction can depend on: the first layer reaches k//2 rows up
        (the masked stem 3), every later layer k//2 more. Columns reach as far left and right (in the rows
        above), so this is also the half-width of the receptive field."""
        k = self.config.kernel
        first = k // 2 if self.config.arch == "gated" else 3
        return first + self.config.layers * (k // 2)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               window: bool = True) -> torch.Tensor:
        """Ancestral sampling in raster order, one network pass per pixel; with `window` each pass sees only the
        rows and columns its pixel can depend on (receptive_rows above, left and right of it): the output at a
        pixel is a function of its receptive field alone, so the samples are the same for less work."""
        y = self.check_labels(n, labels, generator)
        with self.evaluating():
            _, height, width = self.spec.shape
            x = torch.zeros(n, self.c, height, width, device=self.device)
            r = self.receptive_rows
            for i in range(height):
                top = max(0, i - r) if window else 0
                for j in range(width):
                    left, right = (max(0, j - r), min(width, j + r + 1)) if window else (0, width)
                    out = self.logits(x[:, :, top : i + 1, left:right], y)[:, :, :, i - top, j - left]  # (B, C, L)
                    if self.output == "bernoulli":
                        u = torch.rand(n, self.c, generator=generator).to(self.device)
                        x[:, :, i, j] = (u < torch.sigmoid(out[:, :, 0])).float()
                    else:
                        probs = out.softmax(-1).reshape(n * self.c, self.levels).cpu()
                        x[:, :, i, j] = torch.multinomial(probs, 1, generator=generator).reshape(n, self.c).to(x) / 255
            return x

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def phases(self, optimizers) -> list[Phase]:
        def loss(batch):
            x, y = batch
            nll = -self._log_prob(x, y if self.conditional else None).mean()
            return nll, {"nll": nll.detach()}

        return [Phase("nll", "adam", loss, list(self.parameters()))]
