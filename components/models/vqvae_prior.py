"""A gated PixelCNN prior over a trained VQ-VAE's code maps (van den Oord et al. 2017, section 3.2 and 4.1:
"we fit an autoregressive distribution over z, p(z), so we can generate x via ancestral sampling").

The second stage of a two-stage model: built on `vqvae`'s export (`Family.needs`), which it keeps frozen
(eval mode, no gradients) inside its own state_dict, so the exported prior samples and scores images on its
own. Training maximises log p(z) of the code maps the VQ-VAE assigns to training images; the prior is the
gated PixelCNN of van den Oord et al. 2016 ("Conditional Image Generation with PixelCNN Decoders") over
one-hot codes with a K-way softmax per position. The two-stage model's bound, with the deterministic
posterior z_q(x):
    -log p(x) <= -log p(x | z_q) - log p_prior(z_q)
(the uniform prior's h w log K replaced by the learned one), reported as test_neg_elbo_nats next to the VQ-VAE's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import Capabilities, Family, GenerativeModel, ModelConfig, Phase
from components.models.layers import GatedStack


class VQVAEPriorConfig(ModelConfig):
    channels: int = Field(32, ge=1)  # feature maps of the gated stack
    layers: int = Field(5, ge=1)  # gated layers after the first (8x8 code maps: 6 rows of context)
    kernel: int = Field(3, ge=3)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(6, ge=1)


class VQVAEPrior(GenerativeModel):
    capabilities = Capabilities(likelihood="bound", importance_weighted=False, codebook=True)

    def __init__(self, config: VQVAEPriorConfig, spec: DatasetSpec, upstream: dict[str, GenerativeModel]):
        super().__init__(config, spec)
        self.upstream = nn.ModuleDict(upstream)
        for p in self.vqvae.parameters():
            p.requires_grad_(False)
        k = self.vqvae.codebook_size
        self.net = GatedStack(k, config.channels, config.layers, config.kernel)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(config.channels, config.channels, 1), nn.ReLU(),
                                  nn.Conv2d(config.channels, k, 1))

    @property
    def vqvae(self):
        return self.upstream["vqvae"]

    def train(self, mode: bool = True):
        super().train(mode)
        self.vqvae.eval()  # frozen: no EMA codebook updates, fixed codes
        return self

    def own_parameters(self) -> list[nn.Parameter]:
        return [*self.net.parameters(), *self.head.parameters()]

    def code_logits(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, h, w) -> logits (B, K, h, w); position (i, j) sees only the codes before it."""
        onehot = F.one_hot(codes, self.vqvae.codebook_size).permute(0, 3, 1, 2).float()  # (B, h, w, K) -> (B, K, h, w)
        return self.head(self.net(onehot * 2 - 1))

    def code_log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p_prior(codes) per code map in nats."""
        return -F.cross_entropy(self.code_logits(codes), codes, reduction="none").flatten(1).sum(1)

    @property
    def codebook_size(self) -> int:
        return self.vqvae.codebook_size

    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.vqvae.encode_codes(x)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.vqvae.decode_codes(codes)

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.vqvae.reconstruct(x)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, labels: torch.Tensor | None = None, n_samples: int = 1) -> torch.Tensor:
        """The two-stage ELBO log p(x | z_q) + log p_prior(z_q) per image in nats."""
        codes = self.vqvae.encode_codes(x)
        return self.vqvae.decoder_log_prob(x, codes) + self.code_log_prob(codes)

    @torch.no_grad()
    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral sampling of code maps (n, h, w) in raster order, one prediction per position
        (`GatedStack.raster`: the vertical stack once per row)."""
        h, w, k = *self.vqvae.code_shape, self.vqvae.codebook_size
        codes = torch.zeros(n, h, w, dtype=torch.long, device=self.device)
        inp = torch.full((n, k, h, w), -1.0, device=self.device)  # one_hot(codes) * 2 - 1, filled as sampled
        for i, j, out in self.net.raster(inp):
            probs = self.head(out[:, :, None, None])[:, :, 0, 0].softmax(1).cpu()  # (n, ch, 1, 1) -> (n, K)
            codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(self.device)
            inp[:, :, i, j] = F.one_hot(codes[:, i, j], k).float() * 2 - 1
        return codes

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        self.check_labels(n, labels, generator)
        with self.evaluating():
            return self.vqvae.decode_codes(self.sample_codes(n, generator))

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": torch.optim.Adam(self.own_parameters(), lr=self.config.lr)}

    def phases(self, optimizers) -> list[Phase]:
        def loss(batch):
            codes = self.vqvae.encode_codes(batch[0])  # no_grad: the VQ-VAE is fixed
            nll = -self.code_log_prob(codes).mean()
            return nll, {"code_nll_nats": nll.detach()}

        return [Phase("prior", "adam", loss, self.own_parameters())]


FAMILY = Family(VQVAEPriorConfig, VQVAEPrior, "PixelCNN prior over a VQ-VAE's code maps: the two-stage model "
                "(van den Oord et al. 2017)", tiny={"channels": 4, "layers": 1}, needs=("vqvae",),
                curve_samples=False)  # 500 samples take ~2 s on one core (1.6 s sampling): ~28 % of a 7 s epoch
