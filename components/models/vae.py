"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") and beta-VAE
(Higgins et al. 2017, "beta-VAE"), with the importance-weighted bound of Burda et al. 2016 ("IWAE").

The lecture's design: a diagonal-Gaussian MLP encoder D -> 400 -> 2 x 20, the reparameterization
z = mu + sigma * eps, a decoder 20 -> 400 -> D and the closed-form KL to N(0, I); `arch: conv` swaps in
a strided-conv encoder and a transposed-conv decoder. Bernoulli likelihood on binary data, dequantized
Gaussian otherwise (`GaussianVAE`, which the conditional `cvae` extends).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import Capabilities, Family, GenerativeModel, ModelConfig, Phase
from components.models.layers import vae_networks
from components.models.losses import kl_diag_gaussian


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


class VAE(GaussianVAE):
    capabilities = Capabilities(latent=True, encoder=True, likelihood="bound")


FAMILY = Family(VAEConfig, VAE, "VAE / beta-VAE, MLP or conv, Bernoulli or dequantized Gaussian likelihood",
                tiny={"hidden_dim": 32, "latent_dim": 3, "conv_channels": 4})
