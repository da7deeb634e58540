"""PixelCNN: an autoregressive model with an exact likelihood, p(x) = prod_i p(x_i | x_<i) in raster order.

`arch: gated` (default) is the gated PixelCNN of van den Oord et al. 2016, "Conditional Image Generation
with PixelCNN Decoders" (section 2.1-2.2): a vertical stack (a k//2+1 x k conv that sees the rows above)
and a horizontal stack (a 1 x k//2+1 conv that sees the pixels to the left in the current row) fed by the
vertical one through a 1x1 conv, gated activations tanh(W_f * x) * sigmoid(W_g * x), residual connections
in the horizontal stack; the first layer excludes the current pixel (mask A), so the receptive field has
no blind spot. `arch: masked` is the original PixelCNN of van den Oord et al. 2016, "Pixel Recurrent Neural
Networks" (section 3.5): a 7x7 conv with mask A, then 3x3 convs with mask B and ReLU, whose receptive
field misses the pixels up and to the right (the blind spot; tests/models/test_pixelcnn.py shows both).

Output per pixel and channel: one Bernoulli logit for binary data (dSprites, binarized MNIST), else a
256-way softmax over 8-bit values; channels are conditionally independent given the previous pixels
(a valid, if less expressive, factorization than PixelRNN's R -> G -> B). The NLL is exact and discrete,
in nats per image; bits/dim = NLL / (D ln 2). Sampling runs the network once per pixel (H x W passes), so
evaluation declares a sample budget (`Family.eval_samples`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import Capabilities, Family, GenerativeModel, ModelConfig, Phase
from components.models.layers import GatedStack, MaskedConv2d

EVAL_SAMPLES = 200  # images sampled for evaluation: 1024 network passes per batch at 32x32, ~20 s on 2 CPU cores


class PixelCNNConfig(ModelConfig):
    arch: Literal["gated", "masked"] = "gated"  # gated: no blind spot (2016b); masked: the original (2016a)
    channels: int = Field(16, ge=1)  # feature maps per layer
    layers: int = Field(5, ge=1)  # gated layers (or mask-B layers) after the first
    kernel: int = Field(3, ge=3)  # odd kernel size of the gated layers / mask-B convs
    output: Literal["auto", "bernoulli", "softmax"] = "auto"  # auto: bernoulli iff the data is binary
    lr: float = Field(1e-3, gt=0)  # Adam learning rate
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(5, ge=1)


class PixelCNN(GenerativeModel):
    capabilities = Capabilities(likelihood="exact")

    def __init__(self, config: PixelCNNConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        out = config.output if config.output != "auto" else ("bernoulli" if spec.binary else "softmax")
        if out == "bernoulli" and not spec.binary:
            raise ValueError(f"models.pixelcnn.output: bernoulli needs binary data and {spec.name} is not binary; "
                             "use softmax or set data.binarize: true")
        self.output, self.c = out, spec.channels
        self.levels = 1 if out == "bernoulli" else 256
        ch, k = config.channels, config.kernel
        if config.arch == "gated":
            self.gated = GatedStack(spec.channels, ch, config.layers, k)
        else:
            self.stem = MaskedConv2d("A", spec.channels, ch, 7, padding=3)
            self.stack = nn.ModuleList([MaskedConv2d("B", ch, ch, k, padding=k // 2) for _ in range(config.layers)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 1), nn.ReLU(), nn.Conv2d(ch, self.c * self.levels, 1))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel output for images x in [0, 1]: (B, C, H, W) -> (B, C, L, H, W), L = 1 or 256 levels;
        the output at (i, j) depends on x only through pixels before (i, j) in raster order."""
        inp = x * 2 - 1
        if self.config.arch == "gated":
            h = self.gated(inp)
        else:
            h = self.stem(inp)
            for conv in self.stack:
                h = conv(F.relu(h))
        b, _, height, width = x.shape
        return self.head(h).reshape(b, self.c, self.levels, height, width)  # (B, C*L, H, W) -> (B, C, L, H, W)

    def _log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) per image in nats, summed over pixels and channels."""
        out = self.logits(x)
        if self.output == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out[:, :, 0], x, reduction="none").flatten(1).sum(1)
        target = (x * 255).round().long()  # (B, C, H, W) 8-bit values
        return -F.cross_entropy(out.transpose(1, 2), target, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, labels: torch.Tensor | None = None, n_samples: int = 1) -> torch.Tensor:
        """Exact per-image log-likelihood in nats (n_samples is for bounds and ignored)."""
        return self._log_prob(x)

    @property
    def receptive_rows(self) -> int:
        """How many rows above a pixel its prediction can depend on: the first layer reaches k//2 rows up
        (the masked stem 3), every later layer k//2 more."""
        k = self.config.kernel
        first = k // 2 if self.config.arch == "gated" else 3
        return first + self.config.layers * (k // 2)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               window: bool = True) -> torch.Tensor:
        """Ancestral sampling in raster order, one network pass per pixel; with `window` each pass sees only the
        rows its pixel can depend on (receptive_rows above it), which gives the same samples for less work."""
        self.check_labels(n, labels, generator)
        was_training = self.training
        self.eval()
        try:
            _, height, width = self.spec.shape
            x = torch.zeros(n, self.c, height, width, device=self.device)
            for i in range(height):
                top = max(0, i - self.receptive_rows) if window else 0
                for j in range(width):
                    out = self.logits(x[:, :, top : i + 1])[:, :, :, i - top, j]  # (B, C, L)
                    if self.output == "bernoulli":
                        u = torch.rand(n, self.c, generator=generator).to(self.device)
                        x[:, :, i, j] = (u < torch.sigmoid(out[:, :, 0])).float()
                    else:
                        probs = out.softmax(-1).reshape(n * self.c, self.levels).cpu()
                        x[:, :, i, j] = torch.multinomial(probs, 1, generator=generator).reshape(n, self.c).to(x) / 255
            return x
        finally:
            self.train(was_training)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"adam": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def phases(self, optimizers) -> list[Phase]:
        def loss(batch):
            nll = -self._log_prob(batch[0]).mean()
            return nll, {"nll": nll.detach()}

        return [Phase("nll", "adam", loss, list(self.parameters()))]


FAMILY = Family(PixelCNNConfig, PixelCNN, "PixelCNN: gated (no blind spot) or masked, exact likelihood (van den Oord et al. 2016)",
                eval_samples=EVAL_SAMPLES, tiny={"channels": 4, "layers": 2})
