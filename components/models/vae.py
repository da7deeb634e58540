"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") and beta-VAE
(Higgins et al. 2017, "beta-VAE"), with the importance-weighted bound of Burda et al. 2016 ("IWAE").

The lecture's design: a diagonal-Gaussian MLP encoder D -> 400 -> 2 x 20, the reparameterization
z = mu + sigma * eps, a decoder 20 -> 400 -> D and the closed-form KL to N(0, I); `arch: conv` swaps in
a strided-conv encoder and a transposed-conv decoder. Bernoulli likelihood on binary data, dequantized
Gaussian otherwise (see `components.models.common.GaussianVAE`).
"""

from __future__ import annotations

from components.models.base import Capabilities, Family
from components.models.common import GaussianVAE, VAEConfig


class VAE(GaussianVAE):
    capabilities = Capabilities(latent=True, encoder=True, likelihood="bound")


FAMILY = Family(VAEConfig, VAE, "VAE / beta-VAE, MLP or conv, Bernoulli or dequantized Gaussian likelihood",
                tiny={"hidden_dim": 32, "latent_dim": 3, "conv_channels": 4})
