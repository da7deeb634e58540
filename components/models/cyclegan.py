"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks"): generators G: A -> B and F: B -> A, PatchGAN discriminators D_A and D_B, and per step
    L_G = LS(D_B(G(a))) + LS(D_A(F(b))) + lambda (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)
          + lambda_id lambda (|G(b) - b|_1 + |F(a) - a|_1)
with the least-squares adversarial loss (section 4, "Training details"; Mao et al. 2017), the cycle
loss (eq. 2) and the identity loss (section 5.2), Adam(2e-4, 0.5) and a learning rate that is constant,
then decays linearly to zero (the paper's 100 + 100 epochs, here `decay_start` of the epochs).
Generators are the paper's ResNet generator (c7s1-k, `downsamplings` stride-2 convs (the paper's 2; 1 by
default at 32x32), `res_blocks` residual blocks, as many up, c7s1); discriminators are PatchGANs (four 4x4
convs, instance norm), whose output is a map of patch scores. The discriminators see generated images
through a history of the last `pool_size` (50) per domain (Shrivastava et al. 2017, as Zhu et al. use it):
half of each batch's fakes are swapped for older ones, so D does not chase the generator's latest output.

Domains come from the data (the contract's classes and, optionally, a transform): on dSprites, domain A
is one shape and B another (`domain_a`, `domain_b`); prepare draws every placement (scale, orientation,
position) once with a single shape, so the two domains never hold a matching pair. On a torchvision set,
`domain_a: all`, `domain_b: all`, `transform_b: invert` translates digits into inverted digits; an image
then belongs to A or to B by the parity of its pixel sum, so no image appears in both. A batch contributes
its A images and its B images; images of other classes are not used.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models.base import Capabilities, Family, GenerativeModel, ModelConfig, Phase
from components.models.losses import discriminator_loss, generator_loss

DIRECTIONS = ("a2b", "b2a")


class CycleGANConfig(ModelConfig):
    domain_a: str = "square"  # a class of the dataset, or "all"
    domain_b: str = "heart"
    transform_b: Literal["none", "invert", "flip", "transpose"] = "none"  # applied to domain B's images
    g_channels: int = Field(16, ge=1)  # first generator layer (the paper's 64)
    d_channels: int = Field(32, ge=1)
    res_blocks: int = Field(2, ge=1)  # the paper's 6 at 128x128, 9 at 256x256
    downsamplings: int = Field(1, ge=1, le=3)  # stride-2 convs before the residual blocks (the paper's 2)
    cycle_weight: float = Field(10.0, ge=0)  # lambda
    identity_weight: float = Field(0.5, ge=0)  # times lambda (the paper's 0.5 for photo <-> painting)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    decay_start: float = Field(0.5, ge=0, le=1)  # fraction of the epochs at the full rate, then linear decay to 0
    pool_size: int = Field(50, ge=0)  # history of generated images per domain the discriminators see; 0: none
    batch_size: int = Field(64, ge=1)
    epochs: int = Field(3, ge=1)


class ResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_generator(c: int, ch: int, blocks: int, down: int = 1) -> nn.Sequential:
    """(B, C, H, W) in [-1, 1] -> (B, C, H, W) in [-1, 1]: c7s1-ch, d(2ch) ... d(2^down ch), R(2^down ch) x blocks,
    u(2^(down-1) ch) ... u(ch), c7s1-C (the paper's generator has down = 2: d128, d256). Layers are built in
    forward order, so a seed draws the same initial weights for a given shape."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(c, ch, 7), nn.InstanceNorm2d(ch), nn.ReLU(True)]
    for i in range(down):  # H / 2^i -> H / 2^(i+1), channels ch 2^i -> ch 2^(i+1)
        layers += [nn.Conv2d(ch * 2**i, ch * 2 ** (i + 1), 3, 2, 1), nn.InstanceNorm2d(ch * 2 ** (i + 1)), nn.ReLU(True)]
    layers += [ResidualBlock(ch * 2**down) for _ in range(blocks)]
    for i in reversed(range(down)):  # H / 2^(i+1) -> H / 2^i
        layers += [nn.ConvTranspose2d(ch * 2 ** (i + 1), ch * 2**i, 3, 2, 1, output_padding=1),
                   nn.InstanceNorm2d(ch * 2**i), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.ReflectionPad2d(3), nn.Conv2d(ch, c, 7), nn.Tanh())


def patch_discriminator(c: int, ch: int) -> nn.Sequential:
    """PatchGAN: (B, C, H, W) -> (B, 1, H/4 - 2, W/4 - 2) patch scores (6x6 at 32x32); each score sees 34x34
    pixels (four 4x4 kernels at strides 2, 2, 1, 1: 1 + 3 x (1 + 2 + 4 + 4) = 34)."""
    return nn.Sequential(
        nn.Conv2d(c, ch, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.InstanceNorm2d(2 * ch), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * ch, 4 * ch, 4, 1, 1), nn.InstanceNorm2d(4 * ch), nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * ch, 1, 4, 1, 1))


class ImagePool:
    """The last `size` generated images of one domain (Shrivastava et al. 2017): `query(fakes)` returns a batch
    of the same size in which each image is, with probability 1/2 once the pool is full, an older fake (which
    the new one replaces in the pool). Not part of the state_dict: a resumed run starts with an empty pool."""

    def __init__(self, size: int):
        self.size, self.images = size, []

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = []
        for img in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i])
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out) if out else fakes


class CycleGAN(GenerativeModel):
    capabilities = Capabilities(translation=True)

    def __init__(self, config: CycleGANConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        self.class_a, self.class_b = (self._class(config.domain_a, "domain_a"), self._class(config.domain_b, "domain_b"))
        if config.domain_a == config.domain_b and config.transform_b == "none":
            raise ValueError(f"models.cyclegan: domain_a and domain_b are both {config.domain_a!r} with transform_b: "
                             "none; choose two classes or a transform")
        c, g, d = spec.channels, config.g_channels, config.d_channels
        self.g_ab, self.g_ba = (resnet_generator(c, g, config.res_blocks, config.downsamplings),
                                resnet_generator(c, g, config.res_blocks, config.downsamplings))
        self.d_a, self.d_b = patch_discriminator(c, d), patch_discriminator(c, d)
        self._fakes: tuple[torch.Tensor, ...] | None = None
        self.pools = {"a": ImagePool(config.pool_size), "b": ImagePool(config.pool_size)}

    def _class(self, name: str, key: str) -> int | None:
        if name == "all":
            return None
        if name not in self.spec.classes:
            raise ValueError(f"models.cyclegan.{key}: {name!r} is not a class of {self.spec.name} "
                             f"({', '.join(self.spec.classes)}) or 'all'")
        return self.spec.classes.index(name)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Domain B's transform (an involution, so it also maps back)."""
        t = self.config.transform_b
        return {"none": x, "invert": 1 - x, "flip": x.flip(-1), "transpose": x.transpose(-1, -2)}[t]

    def domains(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{"a": (images, row indices), "b": (images, row indices)} of a labelled batch (B's images transformed)."""
        y = torch.as_tensor(y, device=x.device)
        in_a = torch.ones_like(y, dtype=torch.bool) if self.class_a is None else y == self.class_a
        in_b = torch.ones_like(y, dtype=torch.bool) if self.class_b is None else y == self.class_b
        if self.class_a == self.class_b:  # one pool of images: split it by pixel-sum parity (stable per image)
            odd = (x * 255).round().long().flatten(1).sum(1) % 2 == 1
            in_a, in_b = in_a & ~odd, in_b & odd
        ia, ib = in_a.nonzero().squeeze(1), in_b.nonzero().squeeze(1)
        return {"a": (x[ia], ia), "b": (self.transform(x[ib]), ib)}

    def translate(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """Images in [0, 1] of the source domain -> the other domain ("a2b": G, "b2a": F)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction: {direction!r}; allowed: {', '.join(DIRECTIONS)}")
        net = self.g_ab if direction == "a2b" else self.g_ba
        return (net(x * 2 - 1) + 1) / 2

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (self.config.beta1, self.config.beta2)
        gens = [*self.g_ab.parameters(), *self.g_ba.parameters()]
        discs = [*self.d_a.parameters(), *self.d_b.parameters()]
        return {"g": torch.optim.Adam(gens, lr=self.config.lr, betas=betas),
                "d": torch.optim.Adam(discs, lr=self.config.lr, betas=betas)}

    def schedule(self, optimizers, epoch: int, epochs: int) -> None:
        """Constant for the first decay_start of the epochs, then linear to zero at the end (section 4)."""
        start = int(self.config.decay_start * epochs)
        factor = 1.0 if epoch < start else 1.0 - (epoch - start) / max(epochs - start, 1)
        for opt in optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.config.lr * factor

    def cycle_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """|F(G(a)) - a|_1 + |G(F(b)) - b|_1, each a mean over pixels (zero for identity generators)."""
        return (F.l1_loss(self.translate(self.translate(a, "a2b"), "b2a"), a)
                + F.l1_loss(self.translate(self.translate(b, "b2a"), "a2b"), b))

    def phases(self, optimizers) -> list[Phase]:
        cfg = self.config
        gen_params = [*self.g_ab.parameters(), *self.g_ba.parameters()]
        disc_params = [*self.d_a.parameters(), *self.d_b.parameters()]

        def g_loss(batch):
            dom = self.domains(*batch)
            a, b = dom["a"][0], dom["b"][0]
            if not len(a) or not len(b):  # a batch without one of the domains (rare): no update
                self._fakes = None
                zero = sum(p.sum() for p in gen_params) * 0
                return zero, {}
            fake_b, fake_a = self.translate(a, "a2b"), self.translate(b, "b2a")
            adv = (generator_loss("least_squares", self.d_b(fake_b * 2 - 1))
                   + generator_loss("least_squares", self.d_a(fake_a * 2 - 1)))
            cyc = F.l1_loss(self.translate(fake_b, "b2a"), a) + F.l1_loss(self.translate(fake_a, "a2b"), b)
            self._fakes = (a, b, fake_a.detach(), fake_b.detach())
            total = adv + cfg.cycle_weight * cyc
            metrics = {"g_adv": adv.detach(), "cycle_l1": cyc.detach()}
            if cfg.identity_weight > 0:  # two more generator passes: skipped when off
                idt = F.l1_loss(self.translate(b, "a2b"), b) + F.l1_loss(self.translate(a, "b2a"), a)
                total = total + cfg.cycle_weight * cfg.identity_weight * idt
                metrics["identity_l1"] = idt.detach()
            return total, metrics

        def d_loss(_batch):
            if self._fakes is None:
                return sum(p.sum() for p in disc_params) * 0, {}
            a, b, fake_a, fake_b = self._fakes
            fake_a, fake_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
            loss_a = discriminator_loss("least_squares", self.d_a(a * 2 - 1), self.d_a(fake_a * 2 - 1))
            loss_b = discriminator_loss("least_squares", self.d_b(b * 2 - 1), self.d_b(fake_b * 2 - 1))
            return loss_a + loss_b, {"d_a": loss_a.detach(), "d_b": loss_b.detach()}

        return [Phase("G", "g", g_loss, gen_params), Phase("D", "d", d_loss, disc_params, uses_batch=False)]


FAMILY = Family(CycleGANConfig, CycleGAN, "CycleGAN: unpaired translation between two domains (Zhu et al. 2017)",
                tiny={"g_channels": 4, "d_channels": 4, "res_blocks": 1, "domain_a": "a", "domain_b": "b"})
