"""Conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep
Conditional Generative Models"): encoder q(z | x, y), decoder p(x | z, y), prior N(0, I) independent of y.
The label enters as a one-hot vector appended to the encoder's features and to z. The bound is on the
conditional likelihood log p(x | y) and is reported as such (`test_elbo_given_y_nats`); samples are
drawn for the requested classes.
"""

from __future__ import annotations

from components.models.base import Capabilities, Family
from components.models.common import GaussianVAE, VAEConfig


class CVAEConfig(VAEConfig):
    pass


class CVAE(GaussianVAE):
    conditional = True
    capabilities = Capabilities(labels=True, latent=True, encoder=True, likelihood="bound", likelihood_given_labels=True)


FAMILY = Family(CVAEConfig, CVAE, "Conditional VAE: label-conditioned encoder and decoder (Sohn et al. 2015)",
                tiny={"hidden_dim": 32, "latent_dim": 3, "conv_channels": 4})
