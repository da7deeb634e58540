"""Network parts shared by the families: DCGAN's conv stacks, conditional batch norm, spectral norm,
self-attention, the configurable conv generator/discriminator the newer GANs compose, and the VAE's
encoder/decoder. Images enter discriminators in [-1, 1]; generators end in tanh.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) conv weights, N(1, 0.02) batch-norm scales (Radford et al. 2016, section 4)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018): W / sigma(W), sigma estimated by one power iteration
    per forward pass on W reshaped to (out, in * k * k); torch's parametrization (u, v are buffers)."""
    return spectral_norm(module) if enabled else module


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class (de Vries et al. 2017, "Modulating early
    visual processing by language"; Dumoulin et al. 2017): BN(x) * gamma[y] + beta[y], gamma = 1, beta = 0 at init."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g, b = self.gamma(y)[:, :, None, None], self.beta(y)[:, :, None, None]  # (B, C) -> (B, C, 1, 1)
        return self.bn(x) * g + b


class SelfAttention2d(nn.Module):
    """Self-attention block of SAGAN (Zhang et al. 2019, section 3): query/key 1x1 convs to C/8 channels,
    value to C/2, attention over all H*W positions, a 1x1 conv back to C, and x + gamma * o with gamma = 0
    at init (the block starts as the identity)."""

    def __init__(self, channels: int, spectral: bool = False):
        super().__init__()
        self.q = sn(nn.Conv2d(channels, max(1, channels // 8), 1, bias=False), spectral)
        self.k = sn(nn.Conv2d(channels, max(1, channels // 8), 1, bias=False), spectral)
        self.v = sn(nn.Conv2d(channels, max(1, channels // 2), 1, bias=False), spectral)
        self.o = sn(nn.Conv2d(max(1, channels // 2), channels, 1, bias=False), spectral)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2)  # (B, C/8, H, W) -> (B, HW, C/8)
        k = self.k(x).flatten(2)  # (B, C/8, HW)
        attn = torch.softmax(q @ k, dim=-1)  # (B, HW, HW): row i attends over all positions
        v = self.v(x).flatten(2)  # (B, C/2, HW)
        o = (v @ attn.transpose(1, 2)).reshape(b, -1, h, w)  # (B, C/2, HW) -> (B, C/2, H, W)
        return x + self.gamma * self.o(o)


# -- DCGAN (Radford et al. 2016) ----------------------------------------------------------------------
class DCGANGenerator(nn.Module):
    """z -> 4x4 by a transposed conv, then stride-2 transposed convs doubling the side to the data
    resolution, batch norm and ReLU inside, tanh out."""

    def __init__(self, latent_dim: int, channels: int, out_channels: int, resolution: int):
        super().__init__()
        n_up = int(math.log2(resolution)) - 2  # 4x4 -> resolution
        width = channels * 2 ** (n_up - 1)
        layers = [nn.Unflatten(1, (latent_dim, 1, 1)),  # (B, z) -> (B, z, 1, 1)
                  nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, C, H, W) in [-1, 1]


class DCGANDiscriminator(nn.Module):
    """Stride-2 convs with LeakyReLU(0.2), batch norm except on the first layer, down to 4x4, then a 4x4
    conv to one logit; batch_norm=False gives the WGAN-GP critic (Gulrajani et al. 2017, section 4)."""

    def __init__(self, channels: int, in_channels: int, resolution: int, batch_norm: bool = True):
        super().__init__()
        n_down = int(math.log2(resolution)) - 2  # resolution -> 4x4
        layers = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = channels
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(width * 2)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0), nn.Flatten()]  # (B, 1, 1, 1) -> (B, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (B,) logits / critic values


# -- configurable GAN networks (cGAN, InfoGAN, SN-GAN / SAGAN) ------------------------------------------
class ConvGenerator(nn.Module):
    """DCGAN-shaped generator with options: conditional batch norm on class labels (num_classes > 0),
    a self-attention block at side `attention_at`, spectral norm on every conv (SAGAN applies it to G too)."""

    def __init__(self, latent_dim: int, channels: int, out_channels: int, resolution: int, num_classes: int = 0,
                 attention_at: int | None = None, spectral: bool = False):
        super().__init__()
        n_up = int(math.log2(resolution)) - 2
        width = channels * 2 ** (n_up - 1)
        self.num_classes = num_classes
        self.input = sn(nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False), spectral)
        self.norms = nn.ModuleList([self._norm(width)])
        self.ups, self.attn, side = nn.ModuleList(), nn.ModuleDict(), 4
        for _ in range(n_up - 1):
            self.ups.append(sn(nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), spectral))
            width, side = width // 2, side * 2
            self.norms.append(self._norm(width))
            if side == attention_at:
                self.attn[str(len(self.ups) - 1)] = SelfAttention2d(width, spectral)
        self.out = sn(nn.ConvTranspose2d(width, out_channels, 4, 2, 1), spectral)

    def _norm(self, c: int) -> nn.Module:
        return ConditionalBatchNorm2d(c, self.num_classes) if self.num_classes else nn.BatchNorm2d(c)

    def _bn(self, i: int, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return F.relu(self.norms[i](h, y) if self.num_classes else self.norms[i](h))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self._bn(0, self.input(z[:, :, None, None]), y)  # (B, z) -> (B, z, 1, 1) -> (B, W, 4, 4)
        for i, up in enumerate(self.ups):
            h = self._bn(i + 1, up(h), y)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return torch.tanh(self.out(h))  # (B, C, H, W) in [-1, 1]


class ConvDiscriminator(nn.Module):
    """DCGAN-shaped discriminator with options: spectral norm (Miyato et al. 2018) or batch norm, a
    self-attention block at side `attention_at`, and a projection head on class labels (Miyato & Koyama
    2018, eq. 3: D(x, y) = psi(phi(x)) + <embed(y), phi(x)>). `features(x)` is the trunk phi(x) (B, F) that
    other heads (InfoGAN's Q) share."""

    def __init__(self, channels: int, in_channels: int, resolution: int, norm: str = "spectral",
                 num_classes: int = 0, attention_at: int | None = None):
        super().__init__()
        spectral = norm == "spectral"
        n_down = int(math.log2(resolution)) - 2
        layers, width, side = [sn(nn.Conv2d(in_channels, channels, 4, 2, 1), spectral), nn.LeakyReLU(0.2)], channels, resolution // 2
        if side == attention_at:
            layers.append(SelfAttention2d(width, spectral))
        for _ in range(n_down - 1):
            layers.append(sn(nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm != "batch"), spectral))
            layers += [nn.BatchNorm2d(width * 2)] if norm == "batch" else []
            layers.append(nn.LeakyReLU(0.2))
            width, side = width * 2, side // 2
            if side == attention_at:
                layers.append(SelfAttention2d(width, spectral))
        self.trunk = nn.Sequential(*layers, nn.Flatten())  # (B, W, 4, 4) -> (B, 16 W)
        self.feature_dim = width * 16
        self.head = sn(nn.Linear(self.feature_dim, 1), spectral)
        self.embed = None
        if num_classes:
            embed = nn.Embedding(num_classes, self.feature_dim)
            # Glorot-uniform, as Miyato & Koyama's code initialises the class embedding: torch's N(0, 1) rows make
            # <embed(y), phi(x)> ~ sqrt(16 W) ~ 45 at init, a projection term that swamps psi(phi(x)) and saturates
            # the hinge loss until the embedding shrinks (measured: D outputs +-40, the label ignored)
            nn.init.xavier_uniform_(embed.weight)
            self.embed = sn(embed, spectral)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, h: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x) if h is None else h
        out = self.head(h).squeeze(1)  # (B,)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)  # projection: <embed(y), phi(x)>
        return out


# -- VAE networks (Kingma & Welling 2014; the lecture's MLP, or strided convs) -------------------------
def vae_networks(arch: str, channels: int, resolution: int, hidden: int, latent: int, conv_channels: int,
                 cond_dim: int = 0) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(encoder x -> (B, hidden), to_stats (B, hidden + cond_dim) -> (B, 2 latent),
    decoder (B, latent + cond_dim) -> (B, C, H, W) logits / means). cond_dim > 0: a conditional VAE
    (Sohn et al. 2015) appends a one-hot label to the encoder's features and to z."""
    c, r = channels, resolution
    dim = c * r * r
    if arch == "mlp":
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(dim, hidden), nn.ReLU())
        decoder = nn.Sequential(nn.Linear(latent + cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim),
                                nn.Unflatten(1, (c, r, r)))  # (B, D) -> (B, C, H, W)
    else:
        n_down = int(math.log2(r)) - 2  # down to 4x4
        chans = [conv_channels * 2**i for i in range(n_down)]
        enc, prev = [], c
        for ch in chans:
            enc += [nn.Conv2d(prev, ch, 4, 2, 1), nn.ReLU()]
            prev = ch
        encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(prev * 16, hidden), nn.ReLU())  # (B, C', 4, 4) -> (B, h)
        dec = [nn.Linear(latent + cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, prev * 16), nn.ReLU(),
               nn.Unflatten(1, (prev, 4, 4))]
        for ch in reversed([c] + chans[:-1]):
            dec += [nn.ConvTranspose2d(prev, ch, 4, 2, 1), nn.ReLU()]
            prev = ch
        decoder = nn.Sequential(*dec[:-1])  # no ReLU on the output logits / means
    return encoder, nn.Linear(hidden + cond_dim, 2 * latent), decoder


class MaskedConv2d(nn.Conv2d):
    """A conv whose kernel is zero at and after the centre in raster order (mask A) or after it (mask B)."""

    def __init__(self, mask: Literal["A", "B"], *args, **kwargs):
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        m = torch.ones_like(self.weight)
        m[:, :, kh // 2, kw // 2 + (mask == "B"):] = 0  # the centre row from the centre (A) or after it (B)
        m[:, :, kh // 2 + 1:] = 0  # every row below the centre
        self.register_buffer("mask", m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


class GatedLayer(nn.Module):
    """One gated layer: (vertical, horizontal) -> (vertical, horizontal), same shapes (B, C, H, W). With
    num_classes > 0 a class embedding is added to both stacks' gate pre-activations (van den Oord et al. 2016,
    eq. 4: tanh(W_f * x + V_f^T h) . sigmoid(W_g * x + V_g^T h), h the one-hot label): the same bias at every
    position, so conditioning never breaks causality."""

    def __init__(self, channels: int, kernel: int, first: bool, num_classes: int = 0):
        super().__init__()
        self.first, k = first, kernel
        self.vertical = nn.Conv2d(channels, 2 * channels, (k // 2 + 1, k), padding=(k // 2, k // 2))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, k // 2 + 1), padding=(0, k // 2))
        self.h_out = nn.Conv2d(channels, channels, 1)
        if first:  # mask A: the vertical stack must not see the current row, nor the horizontal the current pixel
            self.register_buffer("v_mask", torch.ones_like(self.vertical.weight).index_fill_(2, torch.tensor([k // 2]), 0))
            self.register_buffer("h_mask", torch.ones_like(self.horizontal.weight).index_fill_(3, torch.tensor([k // 2]), 0))
        self.v_label = nn.Embedding(num_classes, 2 * channels) if num_classes else None  # V^T h for one-hot h
        self.h_label = nn.Embedding(num_classes, 2 * channels) if num_classes else None

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        f, g = x.chunk(2, dim=1)  # (B, 2C, H, W) -> 2 x (B, C, H, W)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, v: torch.Tensor, h: torch.Tensor,
                y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vertical_pre(v)
        return self.vertical_out(v_pre, y), self.horizontal_out(h, v_pre, y)

    def vertical_pre(self, v: torch.Tensor) -> torch.Tensor:
        """The vertical stack's pre-activation (B, C, H, W) -> (B, 2C, H, W): row i sees rows <= i of v (the
        first layer rows < i), so it is fixed once the rows above are."""
        wv = self.vertical.weight * self.v_mask if self.first else self.vertical.weight
        return F.conv2d(v, wv, self.vertical.bias, padding=self.vertical.padding)[:, :, : v.shape[-2]]  # rows <= i

    def vertical_out(self, v_pre: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.v_label is not None:
            v_pre = v_pre + self.v_label(y)[:, :, None, None]  # (B, 2C) -> (B, 2C, 1, 1), every position
        return self.gate(v_pre)

    def horizontal_out(self, h: torch.Tensor, v_pre: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The horizontal stack (B, C, H, W) -> (B, C, H, W), fed by the vertical pre-activation at the same
        positions: column j sees columns <= j of h (the first layer columns < j)."""
        wh = self.horizontal.weight * self.h_mask if self.first else self.horizontal.weight
        h_pre = F.conv2d(h, wh, self.horizontal.bias, padding=self.horizontal.padding)[:, :, :, : h.shape[-1]]  # cols <= j
        h_pre = h_pre + self.v_to_h(v_pre)
        if self.h_label is not None:
            h_pre = h_pre + self.h_label(y)[:, :, None, None]
        out = self.h_out(self.gate(h_pre))
        return out if self.first else out + h  # no residual into the first layer's input


class GatedStack(nn.Module):
    """The gated PixelCNN body (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders"):
    a 1x1 stem, then `layers` + 1 gated layers, the first with mask A. (B, C_in, H, W) -> (B, channels, H, W);
    the output at (i, j) depends on the input only through positions before (i, j) in raster order, and with
    num_classes > 0 on the class labels y (B,) (section 2.3)."""

    def __init__(self, in_channels: int, channels: int, layers: int, kernel: int, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Conv2d(in_channels, channels, 1)
        self.stack = nn.ModuleList([GatedLayer(channels, kernel, i == 0, num_classes) for i in range(layers + 1)])

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if (y is None) != (self.num_classes == 0):
            raise ValueError("GatedStack: labels are needed exactly when it is class-conditional")
        v = h = self.stem(x)
        for layer in self.stack:
            v, h = layer(v, h, y)
        return h

    @property
    def reach(self) -> int:
        """How far a position's output reaches: rows above it, and columns left and right in those rows (each
        gated layer k//2 more)."""
        return len(self.stack) * (self.stack[0].vertical.kernel_size[1] // 2)

    def raster(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Iterator[tuple[int, int, torch.Tensor]]:
        """(i, j, the output at (i, j): (B, channels)) in raster order, each computed from the current input x
        (B, C_in, H, W), which an autoregressive sampler fills at (i, j) before asking for the next; the values
        equal `forward(x)[..., i, j]` (tests/models/test_pixelcnn.py). The vertical stack depends on the rows
        above only, so it runs once per row on the `reach` rows above; the horizontal stack then runs along the
        row over the `reach` columns left of each position. PixelCNN's 2,000 evaluation samples at 32x32 are 7.5x
        faster than with the whole network on each pixel's receptive window (bench/pixelcnn_sampling.py)."""
        r, (height, width) = self.reach, x.shape[-2:]
        for i in range(height):
            v, pres = self.stem(x[:, :, max(0, i - r) : i + 1]), []
            for layer in self.stack:  # each layer's vertical pre-activation on row i: (B, 2C, 1, W)
                pre = layer.vertical_pre(v)
                v = layer.vertical_out(pre, y)
                pres.append(pre[:, :, -1:])
            for j in range(width):
                left = max(0, j - r)
                h = self.stem(x[:, :, i : i + 1, left : j + 1])
                for layer, pre in zip(self.stack, pres, strict=True):
                    h = layer.horizontal_out(h, pre[:, :, :, left : j + 1], y)
                yield i, j, h[:, :, 0, -1]
