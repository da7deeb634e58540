"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information Maximizing
Generative Adversarial Nets").

The generator takes noise z plus structured codes c: one categorical code of K values (uniform) and J
continuous codes ~ U[-1, 1]. A Q head on the discriminator's trunk predicts c from G(z, c) (softmax for
the categorical code, a factored Gaussian for the continuous ones), and both players add the variational
lower bound L_I on the mutual information I(c; G(z, c)) (section 5, `losses.mutual_information_bound`):
    D, Q:  min  L_D - lambda (L_I,cat + w_cont L_I,cont)          (Q trained with D, as in the paper's code)
    G:     min  L_G - lambda (L_I,cat + w_cont L_I,cont)
with the non-saturating GAN losses (`components.models.losses`). On dSprites the categorical code is meant
to pick up the shape, the continuous ones position, scale or orientation; evaluation measures it.

`supervised_fraction` > 0 makes it semi-supervised (after ss-InfoGAN, Spurr et al. 2017, "Guiding InfoGAN
with Semi-Supervision"): on that share of the training images, fixed by a hash of each image's pixels, Q's
categorical head learns the true class (cross-entropy, weighted by lambda), which ties the code's values to
the classes, and the generator's side of the bound, log Q(c | G(z, c)), makes G draw the class its code names.
Unlike Spurr et al., Q's categorical head then learns from those labelled images only, not from G's samples:
from samples it learns whatever cue G attaches to the code, and G's samples followed their code less
(docs/learning.md). 0 is Chen et al.'s unsupervised InfoGAN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.models import losses
from components.models.base import Capabilities, Family, Phase
from components.models.gan import AdversarialModel, GANConfig
from components.models.layers import ConvDiscriminator, ConvGenerator, init_dcgan_weights


class InfoGANConfig(GANConfig):
    categorical: int | None = Field(None, ge=2)  # values of the categorical code; null: the data's class count
    continuous: int = Field(2, ge=0)  # continuous codes, each ~ U[-1, 1]
    info_weight: float = Field(1.0, ge=0)  # lambda on the mutual-information bound (1 in the paper)
    continuous_weight: float = Field(0.1, ge=0)  # weight of the continuous codes' term within the bound
    continuous_std: float | None = Field(None, gt=0)  # Q's std for the continuous codes; null: learned (a head)
    latent_dim: int = Field(62, ge=1)  # incompressible noise z (62 in the paper's MNIST model)
    supervised_fraction: float = Field(0.0, ge=0, le=1)  # share of images whose class Q learns (ss-InfoGAN); 0: none


class InfoGAN(AdversarialModel):
    capabilities = Capabilities(latent=True, codes=True)
    # the Q head reads the trunk through discriminator.features, outside the compiled forward: compiled, the
    # backward fails on an in-place change of the trunk's batch-norm state (torch 2.13)
    eager_children = ("discriminator",)

    def __init__(self, config: InfoGANConfig, spec: DatasetSpec):
        super().__init__(config, spec)
        self.k, self.j = config.categorical or spec.num_classes, config.continuous
        if config.supervised_fraction > 0 and self.k != spec.num_classes:
            raise ValueError(f"models.infogan.supervised_fraction: {config.supervised_fraction} needs a categorical code "
                             f"of one value per class ({spec.num_classes} in {spec.name}); categorical is {self.k}")
        self.generator = ConvGenerator(config.latent_dim + self.k + self.j, config.g_channels, spec.channels,
                                       spec.resolution)
        self.discriminator = ConvDiscriminator(config.d_channels, spec.channels, spec.resolution, norm="batch")
        f = self.discriminator.feature_dim
        self.q_head = nn.Sequential(nn.Linear(f, 128), nn.BatchNorm1d(128), nn.LeakyReLU(0.2),
                                    nn.Linear(128, self.k + 2 * self.j))  # -> (cat logits, cont mean, cont log std)
        self.apply(init_dcgan_weights)
        self.init_ema()

    # -- codes -----------------------------------------------------------------------------------------
    def codes(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(categorical (n,), continuous (n, J)) drawn from their uniform priors."""
        cat = torch.randint(0, self.k, (n,), generator=generator)
        cont = torch.rand(n, self.j, generator=generator) * 2 - 1
        return cat.to(self.device), cont.to(self.device)

    def compose(self, z: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, F.one_hot(cat, self.k).float(), cont], 1)  # (B, z + K + J)

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        return self.compose(z, *self.codes(n, generator))

    @torch.no_grad()
    def sample_code(self, cat: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images in [0, 1] drawn with the categorical code fixed to `cat` (B,), noise and continuous codes
        from their priors: does G draw what its code names?"""
        z = torch.randn(len(cat), self.config.latent_dim, generator=generator).to(self.device)
        cont = (torch.rand(len(cat), self.j, generator=generator) * 2 - 1).to(self.device)
        with self.evaluating():
            return self.decode_latent(self.compose(z, cat.to(self.device), cont))

    def q(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.q_head(h)
        logits, mean, log_std = out.split([self.k, self.j, self.j], 1)
        if self.config.continuous_std is not None:  # fixed, as the authors' code has it (`fix_std=True`)
            return logits, mean, torch.full_like(mean, math.log(self.config.continuous_std))
        return logits, mean, log_std.clamp(-5, 2)

    @torch.no_grad()
    def predict_codes(self, x: torch.Tensor, batch_stats: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Q's prediction for images x in [0, 1]: (categorical probabilities (B, K), continuous means (B, J)).
        `batch_stats`: batch norm on the batch's own statistics, as the trunk and Q read every real batch in
        training, where a batch holds real images only. Their running statistics come two thirds from G's
        samples (D's fake pass and G's), and on those Q read real images worse and from epoch to epoch
        differently (docs/learning.md). The running statistics are left as they were."""
        bns = [m for m in (*self.discriminator.modules(), *self.q_head.modules())
               if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [{k: b.clone() for k, b in m.named_buffers()} for m in bns]
        with self.evaluating():
            if batch_stats and len(x) > 1:
                for m in bns:
                    m.train()
            try:
                logits, mean, _ = self.q(self.discriminator.features(x.to(self.device) * 2 - 1))
            finally:
                for m, buffers in zip(bns, saved, strict=True):
                    for k, b in m.named_buffers():
                        b.copy_(buffers[k])
            return logits.softmax(1), mean

    @torch.no_grad()
    def code_traversal(self, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Chen et al.'s figure 2: one block per continuous code (one block with varying noise if none);
        rows: the categorical code's values with one shared z; columns: the code from -1 to 1, the others 0.
        Returns (blocks * K * steps, C, H, W) images, `steps` per row."""
        z = torch.randn(1, self.config.latent_dim, generator=generator).to(self.device)
        values = torch.linspace(-1, 1, steps, device=self.device)
        rows = []
        for code in range(max(self.j, 1)):
            for c in range(self.k):
                cont = torch.zeros(steps, self.j, device=self.device)
                if self.j:
                    cont[:, code] = values
                noise = z.expand(steps, -1) if self.j else torch.randn(steps, z.shape[1], generator=generator).to(self.device)
                rows.append(self.compose(noise, torch.full((steps,), c, device=self.device), cont))
        return self.decode_latent(torch.cat(rows))

    # -- training --------------------------------------------------------------------------------------
    def _fake(self, n: int):
        cat, cont = self.codes(n)
        z = torch.randn(n, self.config.latent_dim, device=self.device)
        return self.generator(self.compose(z, cat, cont)), cat, cont

    def _info(self, h_fake, cat, cont, categorical: bool = True) -> tuple[torch.Tensor, dict]:
        """lambda (L_I,cat + w_cont L_I,cont) on G's samples; `categorical` False leaves L_I,cat out of it."""
        logits, mean, log_std = self.q(h_fake)
        mi = losses.mutual_information_bound(logits, cat, mean, log_std, cont)
        bound = (mi.get("categorical", 0.0) if categorical else 0.0) + self.config.continuous_weight * mi.get("continuous", 0.0)
        return self.config.info_weight * bound, {f"mi_{k}": v.detach() for k, v in mi.items()}

    def labelled(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the images whose class Q may learn, a `supervised_fraction` share fixed per image by a
        hash of its pixels (the same images in every epoch, on every worker)."""
        pixels = (x * 255).round().long().flatten(1)  # (B, C*H*W)
        weights = torch.arange(1, pixels.shape[1] + 1, device=x.device) * 2654435761 % 2**31
        h = (pixels * weights).sum(1) % 2**31
        return h.double() / 2**31 < self.config.supervised_fraction

    def d_loss(self, batch):
        x, y = batch
        with torch.no_grad():
            fake, cat, cont = self._fake(x.shape[0])
        h_fake, h_real = self.discriminator.features(fake), self.discriminator.features(x * 2 - 1)
        l_real, l_fake = self.discriminator(None, h=h_real), self.discriminator(fake, h=h_fake)
        adv = losses.discriminator_loss("non_saturating", l_real, l_fake)
        supervised = self.config.supervised_fraction > 0
        info, metrics = self._info(h_fake, cat, cont, categorical=not supervised)  # supervised: Q_cat from real labels
        loss = adv - info
        if supervised:
            mask = self.labelled(x)
            logits_real = self.q(h_real)[0]  # the whole batch through Q's batch norm, then the labelled rows
            sup = F.cross_entropy(logits_real[mask], y[mask].long()) if mask.any() else logits_real.sum() * 0
            loss = loss + self.config.info_weight * sup
            metrics["q_supervised_ce"] = sup.detach()
        return loss, {"d_loss": adv.detach(), **metrics}

    def g_loss(self, batch):
        fake, cat, cont = self._fake(batch[0].shape[0])
        h_fake = self.discriminator.features(fake)
        adv = losses.generator_loss("non_saturating", self.discriminator(fake, h=h_fake))
        info, _ = self._info(h_fake, cat, cont)
        return adv - info, {"g_loss": adv.detach()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        d_params = list(self.discriminator.parameters()) + list(self.q_head.parameters())
        return {"D": torch.optim.Adam(d_params, lr=c.d_lr or c.lr, betas=(c.beta1, c.beta2)),
                "G": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))}

    def phases(self, optimizers) -> list[Phase]:
        d_params = list(self.discriminator.parameters()) + list(self.q_head.parameters())
        return [Phase("D", "D", self.d_loss, d_params), self.generator_phase(self.g_loss)]


FAMILY = Family(InfoGANConfig, InfoGAN, "InfoGAN: categorical + continuous codes, Q head on the D trunk (Chen et al. 2016)",
                tiny={"latent_dim": 8, "g_channels": 4, "d_channels": 4})
