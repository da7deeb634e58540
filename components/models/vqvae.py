"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning").

The encoder (two stride-2 convs and a residual block) maps an image to z_e (B, D, H/4, W/4); each position
is replaced by its nearest codebook vector e_k (z_q), and the decoder (the mirror image) maps z_q back. The
gradient passes the quantizer straight through (z_e + sg[z_q - z_e]). Loss per image (section 3.2, eq. 3):
    -log p(x | z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2,
summed over the latent positions and channels. With `ema_decay` > 0 the codebook term is replaced by
exponential moving averages of the encoder outputs assigned to each code (appendix A.1, with Laplace
smoothing of the counts); the counts and sums are all-reduced across DDP ranks before each update, so every
rank keeps the same codebook. A code whose EMA count falls below `restart_below` is re-seeded with an encoder
output of the current batch (the random restarts of Dhariwal et al. 2020, "Jukebox", section 2.2; rank 0's
choice, broadcast), which keeps the codebook from collapsing onto a few codes. p(x | z_q) is Bernoulli on binary data, else a 256-way categorical per pixel:
both exact discrete likelihoods of the 8-bit image given the codes.

The VQ-VAE's own prior is uniform over the K^(h w) code maps (section 3.2), so
    -log p(x) <= -log p(x | z_q) + h w log K,
the ELBO of a deterministic posterior (its KL is the constant h w log K). `sample` draws uniform codes, which
gives poor images: `vqvae_prior` learns a PixelCNN prior over the code maps instead.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import Capabilities, Family, GenerativeModel, ModelConfig, Phase

DOWNSAMPLE = 4  # image side / code map side


class VQVAEConfig(ModelConfig):
    codebook_size: int = Field(64, ge=2)  # K codes (the paper's 512 suits larger images)
    code_dim: int = Field(16, ge=1)  # D, the size of each code vector
    channels: int = Field(32, ge=1)  # conv channels of encoder and decoder
    beta: float = Field(0.25, ge=0)  # commitment weight (the paper's 0.25)
    ema_decay: float = Field(0.99, ge=0, lt=1)  # > 0: EMA codebook updates (appendix A.1); 0: codebook loss
    restart_below: float = Field(1.0, ge=0)  # EMA: re-seed codes used less than this (expected uses per step); 0: never
    output: Literal["auto", "bernoulli", "softmax"] = "auto"  # auto: bernoulli iff the data is binary
    lr: float = Field(1e-3, gt=0)  # Adam (the paper's 2e-4 over far more steps)
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(6, ge=1)


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization onto K code vectors of size D, trained by EMA or by its loss term."""

    def __init__(self, codebook_size: int, code_dim: int, ema_decay: float, restart_below: float = 0.0,
                 eps: float = 1e-5):
        super().__init__()
        self.k, self.decay, self.eps, self.restart_below = codebook_size, ema_decay, eps, restart_below
        init = torch.empty(codebook_size, code_dim).uniform_(-1 / codebook_size, 1 / codebook_size)
        if ema_decay > 0:
            self.register_buffer("codebook", init)
            self.register_buffer("ema_count", torch.zeros(codebook_size))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) index of the nearest code (squared Euclidean distance), in fp32 whatever the autocast:
        in bf16 (8-bit mantissa) the |z|^2 term swamps the differences between codes and the argmin is noise."""
        with torch.autocast(flat.device.type, enabled=False):
            flat, e = flat.float(), self.codebook.float()
            d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]  # (N, K)
        return d.argmin(1)

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_e (B, D, h, w) -> (z_q (B, D, h, w), codes (B, h, w)); updates the EMA codebook in training."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)  # (B, D, h, w) -> (B*h*w, D)
        codes = self.nearest(flat.detach())
        if self.training and self.decay > 0:
            self._ema_update(flat.detach().float(), codes)
        z_q = self.codebook[codes].reshape(b, h, w, d).permute(0, 3, 1, 2)  # (B*h*w, D) -> (B, D, h, w)
        return z_q, codes.reshape(b, h, w)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        """N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum of z_e assigned to k, e_k = m_k / N_k (smoothed);
        n_k and the sums are totals over all DDP ranks, so the codebooks stay identical."""
        onehot = F.one_hot(codes, self.k).type_as(flat)  # (N, K)
        stats = torch.cat([onehot.sum(0)[:, None], onehot.t() @ flat], 1)  # (K, 1 + D): counts | sums
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if distributed:
            dist.all_reduce(stats)
        self.ema_count.mul_(self.decay).add_(stats[:, 0], alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(stats[:, 1:], alpha=1 - self.decay)
        dead = self.ema_count < self.restart_below  # (K,), identical on every rank
        if dead.any():
            seeds = flat[torch.randint(0, len(flat), (self.k,), device=flat.device)]  # (K, D) candidates
            if distributed:
                dist.broadcast(seeds, src=0)
            self.ema_sum[dead], self.ema_count[dead] = seeds[dead], 1.0
        n = self.ema_count.sum()
        count = (self.ema_count + self.eps) / (n + self.k * self.eps) * n  # Laplace smoothing: no division by 0
        self.codebook.copy_(self.ema_sum / count[:, None])


class VQVAE(GenerativeModel):
    capabilities = Capabilities(likelihood="bound", importance_weighted=False, codebook=True)

    def __init__(self, config: VQVAEConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        if spec.resolution % DOWNSAMPLE:
            raise ValueError(f"vqvae: data.resolution must be a multiple of {DOWNSAMPLE} (got {spec.resolution})")
        out = config.output if config.output != "auto" else ("bernoulli" if spec.binary else "softmax")
        if out == "bernoulli" and not spec.binary:
            raise ValueError(f"models.vqvae.output: bernoulli needs binary data and {spec.name} is not binary; "
                             "use softmax or set data.binarize: true")
        self.output, self.c = out, spec.channels
        self.levels = 1 if out == "bernoulli" else 256
        ch, d = config.channels, config.code_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(spec.channels, ch, 4, 2, 1), nn.ReLU(), nn.Conv2d(ch, ch, 4, 2, 1),  # (B, C, H, W) -> (B, ch, H/4, W/4)
            Residual(ch), nn.ReLU(), nn.Conv2d(ch, d, 1))
        self.quantizer = VectorQuantizer(config.codebook_size, d, config.ema_decay, config.restart_below)
        self.decoder = nn.Sequential(
            nn.Conv2d(d, ch, 3, padding=1), Residual(ch), nn.ReLU(),
            nn.ConvTranspose2d(ch, ch, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(ch, spec.channels * self.levels, 4, 2, 1))  # (B, D, h, w) -> (B, C*L, H, W)

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def code_shape(self) -> tuple[int, int]:
        side = self.spec.resolution // DOWNSAMPLE
        return side, side

    def _logits(self, z_q: torch.Tensor) -> torch.Tensor:
        b, _, h, w = z_q.shape
        return self.decoder(z_q).reshape(b, self.c, self.levels, h * DOWNSAMPLE, w * DOWNSAMPLE)  # (B, C, L, H, W)

    def _log_prob(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per image in nats (exact, discrete)."""
        if self.output == "bernoulli":
            return -F.binary_cross_entropy_with_logits(logits[:, :, 0], x, reduction="none").flatten(1).sum(1)
        target = (x * 255).round().long()  # (B, C, H, W) 8-bit values
        return -F.cross_entropy(logits.transpose(1, 2), target, reduction="none").flatten(1).sum(1)

    def _mean(self, logits: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image in [0, 1]."""
        if self.output == "bernoulli":
            return torch.sigmoid(logits[:, :, 0])
        values = torch.arange(256, device=logits.device, dtype=logits.dtype) / 255
        return (logits.softmax(2) * values[:, None, None]).sum(2)  # E[x] over the 256 levels

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (B, C, H, W) -> code indices (B, h, w) (no codebook update), in fp32 whatever the
        autocast: these codes are the data a prior trains on, so they must be the codes evaluation computes."""
        training = self.quantizer.training
        self.quantizer.eval()
        try:
            with torch.autocast(x.device.type, enabled=False):
                return self.quantizer(self.encoder(x.float() * 2 - 1))[1]
        finally:
            self.quantizer.train(training)

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.quantizer.codebook[codes].permute(0, 3, 1, 2)  # (B, h, w) -> (B, h, w, D) -> (B, D, h, w)

    @torch.no_grad()
    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices (B, h, w) -> the decoder's mean images in [0, 1]."""
        return self._mean(self._logits(self.embed_codes(codes)))

    def decoder_log_prob(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """log p(x | z_q(codes)) per image in nats."""
        return self._log_prob(x, self._logits(self.embed_codes(codes)))

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode_codes(self.encode_codes(x))

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, labels: torch.Tensor | None = None, n_samples: int = 1) -> torch.Tensor:
        """The ELBO under the uniform prior: log p(x | z_q) - h w log K per image (n_samples: no effect, the
        posterior is deterministic)."""
        h, w = self.code_shape
        return self.decoder_log_prob(x, self.encode_codes(x)) - h * w * math.log(self.codebook_size)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoded code maps drawn from the uniform prior (the paper's point: they are poor; see vqvae_prior)."""
        self.check_labels(n, labels, generator)
        codes = torch.randint(0, self.codebook_size, (n, *self.code_shape), generator=generator).to(self.device)
        return self.decode_codes(codes)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.config.lr)}

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch means of the eq. 3 terms for images x in [0, 1]."""
        z_e = self.encoder(x * 2 - 1)
        z_q, _ = self.quantizer(z_e)
        z_st = z_e + (z_q - z_e).detach()  # straight-through: the decoder's gradient is copied onto z_e
        recon = -self._log_prob(x, self._logits(z_st)).mean()
        commit = (z_e - z_q.detach()).pow(2).flatten(1).sum(1).mean()
        codebook = (z_e.detach() - z_q).pow(2).flatten(1).sum(1).mean()  # zero gradient with EMA (a buffer)
        return {"recon_nats": recon, "commitment": commit, "codebook": codebook}

    def phases(self, optimizers) -> list[Phase]:
        def loss(batch):
            terms = self.losses(batch[0])
            total = terms["recon_nats"] + self.config.beta * terms["commitment"]
            if self.config.ema_decay == 0:
                total = total + terms["codebook"]
            return total, {k: v.detach() for k, v in terms.items()}

        return [Phase("vq", "adam", loss, [p for p in self.parameters() if p.requires_grad])]


FAMILY = Family(VQVAEConfig, VQVAE, "VQ-VAE: discrete codes, straight-through, EMA codebook (van den Oord et al. 2017)",
                tiny={"codebook_size": 8, "code_dim": 4, "channels": 8},
                sample_targets=False)  # its samples decode uniform codes; vqvae_prior is the model that samples
