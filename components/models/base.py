"""The contract every model family implements, and the training phase the loop runs.

A model is an `nn.Module` built by `Family.build(config, dataset_spec)`. It exposes:
    optimizers()                    {name: torch optimizer} over its own parameters
    phases()                        [Phase, ...] run in order once per training step
    sample(n, labels, generator)    images (n, C, H, W) in the data range [0, 1]
    log_likelihood(x)               per-image lower bound in nats, for families that have one
Models receive images in [0, 1] (see `components.data.to_float`) and rescale internally if they need to.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from components.data.shards import DatasetSpec

Batch = tuple[torch.Tensor, torch.Tensor]  # (images in [0, 1] (B, C, H, W), labels (B,))
LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class ModelConfig(BaseModel):
    """Base of every model family's config: rejects unknown keys; training budget shared by all."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Phase:
    """One optimisation phase of a training step (stylegan2-ada's Gmain/Dmain, with a repeat count).

    name:       label in logs and error messages ("elbo", "D", "G", "critic")
    optimizer:  key into model.optimizers()
    loss:       batch -> (scalar loss to minimise, {metric name: detached scalar})
    parameters: the parameters this phase updates (their gradients are averaged across DDP ranks)
    repeat:     times the phase runs per step, each on a fresh batch (WGAN critic: n_critic)
    uses_batch: False: reuse the step's last batch instead of drawing one (a generator needs its size only)
    after_step: called after each optimizer step (WGAN weight clipping)
    """

    name: str
    optimizer: str
    loss: LossFn
    parameters: list[nn.Parameter]
    repeat: int = 1
    uses_batch: bool = True
    after_step: Callable[[], None] | None = None


class GenerativeModel(nn.Module, abc.ABC):
    """Common base: keeps the config and dataset spec, and defines the interface the loop relies on."""

    def __init__(self, config: ModelConfig, spec: DatasetSpec):
        super().__init__()
        self.config, self.spec = config, spec

    @abc.abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """{name: optimizer} over this model's parameters (names are what phases refer to)."""

    @abc.abstractmethod
    def phases(self, optimizers: dict[str, torch.optim.Optimizer]) -> list[Phase]:
        """The phases of one training step, in order."""

    @abc.abstractmethod
    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n latent codes from the prior (for samples and interpolations)."""

    @abc.abstractmethod
    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for latent codes z (B, latent_dim) -> (B, C, H, W)."""

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in [0, 1] from the model (labels are for conditional families; ignored here)."""
        was_training = self.training
        self.eval()
        try:
            return self.decode_latent(self.latent(n, generator)).clamp(0, 1)
        finally:
            self.train(was_training)

    @property
    def has_likelihood(self) -> bool:
        return hasattr(self, "log_likelihood")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@dataclass(frozen=True)
class Family:
    """A registry entry: the config class, the module class, and a short description."""

    Config: type[ModelConfig]
    Model: type[GenerativeModel]
    description: str

    def build(self, config: ModelConfig | dict[str, Any], spec: DatasetSpec) -> GenerativeModel:
        cfg = config if isinstance(config, self.Config) else self.Config(**dict(config))
        return self.Model(cfg, spec)


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) conv weights, N(1, 0.02) batch-norm scales (Radford et al. 2016, section 4)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
