"""Conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep
Conditional Generative Models"): encoder q(z | x, y), decoder p(x | z, y), prior N(0, I) independent of y.
The label enters as a one-hot vector appended to the encoder's features and to z. The bound is on the
conditional likelihood log p(x | y) and is reported as such (`test_neg_elbo_given_y_nats`); samples are
drawn for the requested classes.

The paper's hybrid objective (section 4.2, eq. 9): L = alpha L_CVAE + (1 - alpha) L_GSNN, where the GSNN
term trains the decoder with z drawn from the prior, log p(x | z ~ p(z), y), so that generation from the prior
has learned to use the label. Without it the encoder puts the class into z (its KL costs ~log K nats) and the
decoder, given z, ignores y: samples for a requested class follow z, not the label. Here `gsnn_weight` is
(1 - alpha) / alpha, the weight of the GSNN term beside the (beta-weighted) ELBO; 0 gives the plain CVAE.
"""

from __future__ import annotations

import torch
from pydantic import Field

from components.models.base import Capabilities, Family, Phase
from components.models.vae import GaussianVAE, VAEConfig


class CVAEConfig(VAEConfig):
    gsnn_weight: float = Field(0.0, ge=0)  # weight of Sohn et al.'s GSNN term (decoder trained on z from the prior)


class CVAE(GaussianVAE):
    conditional = True
    capabilities = Capabilities(labels=True, latent=True, encoder=True, likelihood="bound", likelihood_given_labels=True)

    def phases(self, optimizers) -> list[Phase]:
        (elbo,) = super().phases(optimizers)
        if self.config.gsnn_weight == 0:
            return [elbo]

        def hybrid(batch):
            objective, metrics = elbo.loss(batch)
            x, y = batch
            z = torch.randn(x.shape[0], self.config.latent_dim, device=x.device)  # z ~ p(z), not q(z | x, y)
            gsnn = -self.log_px_given_z(self._dequantize(x), z, y).mean()
            return objective + self.config.gsnn_weight * gsnn, {**metrics, "gsnn_rec": gsnn.detach()}

        return [Phase("elbo", "adam", hybrid, elbo.parameters)]


FAMILY = Family(CVAEConfig, CVAE, "Conditional VAE: label-conditioned encoder and decoder (Sohn et al. 2015)",
                tiny={"hidden_dim": 32, "latent_dim": 3, "conv_channels": 4})
