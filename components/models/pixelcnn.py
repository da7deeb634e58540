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
in nats per image; bits/dim = NLL / (D ln 2). Sampling makes one prediction per pixel (H x W of them), the
gated network's vertical stack once per row and its horizontal stack along the row (`GatedStack.raster`):
2,000 images for evaluation take about 45 s on 2 CPU cores, the price of the same N as every other family
(a per-epoch sample curve would still cost more than 10 % of an epoch, so its quality curve is the validation
NLL). The network is `PixelCNNBase`, which the class-conditional `cpixelcnn` extends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import Capabilities, Family, GenerativeModel, ModelConfig, Phase
from components.models.layers import GatedStack, MaskedConv2d


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

    def raster_logits(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                      passes: Literal["rows", "window", "full"] = "rows") -> Iterator[tuple[int, int, torch.Tensor]]:
        """(i, j, the prediction for pixel (i, j): (B, C, L)) in raster order, each computed from the current x
        (B, C, H, W) in [0, 1], which the caller may fill at (i, j) before asking for the next. Each prediction
        sees what its pixel can depend on, so the three ways give the same values (tests/models/test_pixelcnn.py):
          rows:   (gated) `GatedStack.raster`: the vertical stack once per row, the horizontal stack along it;
                  the masked network falls back to `window`;
          window: the whole network on the pixel's receptive window (receptive_rows up, left and right);
          full:   the whole network on the whole image for every pixel."""
        n, _, height, width = x.shape
        if passes == "rows" and self.config.arch == "gated":
            inp = x * 2 - 1  # the network's input, kept in step with x below
            for i, j, h in self.gated.raster(inp, self._labels(labels)):
                yield i, j, self.head(h[:, :, None, None]).reshape(n, self.c, self.levels)  # (B, C*L, 1, 1) -> (B, C, L)
                inp[:, :, i, j] = x[:, :, i, j] * 2 - 1
            return
        r, window = self.receptive_rows, passes != "full"
        for i in range(height):
            top = max(0, i - r) if window else 0
            for j in range(width):
                left, right = (max(0, j - r), min(width, j + r + 1)) if window else (0, width)
                yield i, j, self.logits(x[:, :, top : i + 1, left:right], labels)[:, :, :, i - top, j - left]

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               passes: Literal["rows", "window", "full"] = "rows") -> torch.Tensor:
        """Ancestral sampling in raster order, one prediction per pixel (`raster_logits`; `passes` says how it is
        computed, with the same images either way)."""
        y = self.check_labels(n, labels, generator)
        with self.evaluating():
            _, height, width = self.spec.shape
            x = torch.zeros(n, self.c, height, width, device=self.device)
            for i, j, out in self.raster_logits(x, y, passes):
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


class PixelCNN(PixelCNNBase):
    capabilities = Capabilities(likelihood="exact")


FAMILY = Family(PixelCNNConfig, PixelCNN, "PixelCNN: gated (no blind spot) or masked, exact likelihood (van den Oord et al. 2016)",
                curve_samples=False, tiny={"channels": 4, "layers": 2})
