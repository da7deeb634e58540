"""The contract every model family keeps, the capabilities it may declare, and the training phase.

A model is an `nn.Module` built by `Family.build(config, dataset_spec, upstream)`. Every model implements
    optimizers()                    {name: torch optimizer} over its own parameters
    phases(optimizers)              [Phase, ...] run in order once per training step
    sample(n, labels, generator)    images (n, C, H, W) in the data range [0, 1] (all but translation models)
and may override schedule(optimizers, epoch, epochs) (learning-rate schedules, called before every epoch).
Everything else is opt-in and declared in `Capabilities`; evaluation, tuning, the registry and the CLI
act on what a model declares, never on `hasattr`:
    labels       sample(n, labels=y) honours class labels y (n,) (conditional models)
    latent       latent(n, generator) and decode_latent(z, labels): interpolations
    encoder      encode(x, labels) -> (mu, logvar): reconstructions and latent traversals
    likelihood   log_likelihood(x, labels, n_samples) per image in nats: "bound" (ELBO/IWAE) or "exact"
    codes        structured codes (InfoGAN): code_traversal(...) and predict_codes(x)
    codebook     a discrete latent map (VQ-VAE): encode_codes(x) -> (B, h, w), decode_codes(codes),
                 codebook_size; reconstructions and codebook usage
    translation  translate(x, direction) between two domains ("a2b", "b2a") and domains(x, y) -> the
                 images of each domain; such a model does not sample
A family built on another model's export declares it in `Family.needs`; its model gets the upstream
models ({name: model}) at construction, keeps them as frozen submodules (so its own state_dict and
export are self-contained) and trains only its own parameters.
Models receive images in [0, 1] (see `components.data.to_float`) and rescale internally if they need to.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from components.data.shards import DatasetSpec
from components.schema import StrictNumbers

Batch = tuple[torch.Tensor, torch.Tensor]  # (images in [0, 1] (B, C, H, W), labels (B,))
LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class ModelConfig(StrictNumbers):
    """Base of every model family's config: rejects unknown keys, booleans for numbers and inf/nan; the
    training budget every family has."""

    batch_size: int = Field(64, ge=1)  # per-worker batch
    epochs: int = Field(10, ge=1)  # passes over the training split


@dataclass(frozen=True)
class Capabilities:
    """What a family can do beyond sampling (see the module docstring for the methods each implies)."""

    labels: bool = False
    latent: bool = False
    encoder: bool = False
    likelihood: Literal["bound", "exact"] | None = None
    likelihood_given_labels: bool = False  # the likelihood is log p(x | y), evaluated with the true labels
    codes: bool = False
    codebook: bool = False
    translation: bool = False
    importance_weighted: bool = True  # a "bound" with a stochastic posterior also gets IWAE-k; a deterministic
    # posterior (VQ-VAE's nearest code) makes IWAE-k equal the ELBO, so only the ELBO is reported

    def likelihood_metrics(self) -> dict[str, str]:
        """Metric keys for this likelihood, named for what they are: a bound is never reported as an NLL,
        an exact NLL never as an ELBO; `_given_y` marks a conditional likelihood."""
        if self.likelihood is None:
            return {}
        y = "_given_y" if self.likelihood_given_labels else ""
        if self.likelihood == "exact":
            return {"single": f"test_nll{y}_nats"}
        if not self.importance_weighted:
            return {"single": f"test_neg_elbo{y}_nats"}
        return {"single": f"test_neg_elbo{y}_nats", "importance": f"test_neg_iwae{y}_nats"}


@dataclass
class Phase:
    """One optimisation phase of a training step (stylegan2-ada's Gmain/Dmain, with a repeat count).

    name:       label in logs and error messages ("elbo", "D", "G", "critic")
    optimizer:  key into model.optimizers()
    loss:       batch -> (scalar loss to minimise, {metric name: detached scalar})
    parameters: the parameters this phase updates (their gradients are averaged across DDP ranks)
    repeat:     times the phase runs per step, each on a fresh batch (WGAN critic: n_critic)
    uses_batch: False: reuse the step's last batch instead of drawing one (a generator needs its size only)
    after_step: called after each optimizer step (WGAN weight clipping, EMA of generator weights)
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

    capabilities: ClassVar[Capabilities] = Capabilities()
    # sub-networks `train.compile` leaves eager because torch.compile fails on how the family uses them (WGAN-GP:
    # a double backward; InfoGAN: a trunk also called outside its compiled forward); tests/training/test_loop.py
    eager_children: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ModelConfig, spec: DatasetSpec):
        super().__init__()
        self.config, self.spec = config, spec

    @abc.abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """{name: optimizer} over this model's parameters (names are what phases refer to)."""

    @abc.abstractmethod
    def phases(self, optimizers: dict[str, torch.optim.Optimizer]) -> list[Phase]:
        """The phases of one training step, in order."""

    def sample(self, n: int, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in [0, 1]; `labels` (n,) for families that declare `labels` (else must be None).
        Every family but translation ones overrides it (`Family` checks)."""
        raise NotImplementedError(f"{type(self).__name__} translates between two domains and does not sample; "
                                  "use translate (genzoo translate)")

    def schedule(self, optimizers: dict[str, torch.optim.Optimizer], epoch: int, epochs: int) -> None:
        """Called before every epoch (0-based) of `epochs`: set learning rates here (a function of the epoch
        alone, so a resumed run follows the same schedule). Default: constant rates."""

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstructions of x in [0, 1] (encoder families: the decoder mean at the posterior mean)."""
        mu, _ = self.encode(x, labels)
        return self.decode_latent(mu, labels)

    def check_labels(self, n: int, labels: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor | None:
        """Validated labels on the model's device: None for unconditional families; for conditional ones the
        given labels, or labels drawn uniformly over the classes when none are given."""
        if not self.capabilities.labels:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is not conditional: it takes no labels")
            return None
        k = self.spec.num_classes
        if labels is None:
            labels = torch.randint(0, k, (n,), generator=generator)
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if labels.shape[0] != n or (labels.numel() and (labels.min() < 0 or labels.max() >= k)):
            raise ValueError(f"labels: need {n} class indices in [0, {k}) ({', '.join(self.spec.classes)})")
        return labels.to(self.device)

    @torch.no_grad()
    def sample_latent(self, n: int, labels: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        """`sample` for families with the `latent` capability: decode_latent(latent(n), labels) in eval mode."""
        labels = self.check_labels(n, labels, generator)
        with self.evaluating():
            return self.decode_latent(self.latent(n, generator), labels).clamp(0, 1)

    @contextmanager
    def evaluating(self):
        """Eval mode (batch norm on running statistics, no EMA or codebook updates) for the block, then the
        mode the model was in."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


@dataclass(frozen=True)
class Family:
    """A registry entry: the config class, the module class and what the pipeline needs to know of it.

    objective:      the tuning objective a trial reports after each epoch (lower is better)
    primary_metric: the evaluation metric promotion compares (its direction from components.evaluation.registry)
    figures:        the figures evaluation draws (names of `components.evaluation.figures` drawers)
    tiny:           a small config for tests and smoke runs (what the contract test builds)
    needs:          the model whose export this family is built on (at most one: pipeline.models.<m>.data
                    names one input, its dvc.yaml dependency); `build` then takes it as `upstream`
    default_run:    trained by the default `dvc repro` (params.yaml pipeline.models); False for variants left
                    out of the CPU budget, which a user adds to pipeline.models
    curve_samples:  the per-epoch quality curve samples (FID, precision, recall); False for autoregressive
                    samplers, whose samples cost more than an epoch (their curve is the validation likelihood)
    sample_targets: its samples are held to the precision/recall targets (False: a model whose samples are not
                    what it is for, the VQ-VAE's uniform prior over codes; judged on codebook and reconstructions)
    """

    Config: type[ModelConfig]
    Model: type[GenerativeModel]
    description: str
    objective: str = ""
    primary_metric: str = ""
    figures: tuple[str, ...] = ()
    tiny: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    default_run: bool = True
    curve_samples: bool = True
    sample_targets: bool = True

    def __post_init__(self):
        caps = self.capabilities
        if len(self.needs) > 1:
            raise TypeError(f"{self.Model.__name__}: at most one upstream model (needs={self.needs})")
        if not caps.translation and self.Model.sample is GenerativeModel.sample:
            raise TypeError(f"{self.Model.__name__}: a family that does not translate must implement sample()")
        likelihood = caps.likelihood_metrics()
        if not self.objective:  # a likelihood model tunes on its validation bound, the others on FID
            name = likelihood.get("single", "").removeprefix("test_").removesuffix("_nats")
            object.__setattr__(self, "objective", "val_cycle_l1" if caps.translation else
                               f"val_{name}" if name else "val_fid")
        if not self.primary_metric:
            object.__setattr__(self, "primary_metric", "translation_fid" if caps.translation else
                               likelihood.get("importance") or likelihood.get("single") or "fid")
        if not self.figures:
            figs = ["translations"] if caps.translation else ["samples", "nearest_neighbours"]
            figs += ["interpolation"] if caps.latent else []
            figs += ["class_grid"] if caps.labels else []
            figs += ["reconstructions"] if caps.encoder or caps.codebook else []
            figs += ["traversal"] if caps.encoder else []
            figs += ["code_traversal"] if caps.codes else []
            object.__setattr__(self, "figures", tuple(figs))

    @property
    def capabilities(self) -> Capabilities:
        return self.Model.capabilities

    def build(self, config: ModelConfig | dict[str, Any], spec: DatasetSpec,
              upstream: dict[str, GenerativeModel] | None = None) -> GenerativeModel:
        cfg = config if isinstance(config, self.Config) else self.Config(**dict(config))
        if not self.needs:
            return self.Model(cfg, spec)
        missing = [m for m in self.needs if m not in (upstream or {})]
        if missing:
            raise ValueError(f"{self.Model.__name__} is built on {', '.join(missing)}: pass upstream={{name: model}}")
        return self.Model(cfg, spec, upstream={m: upstream[m] for m in self.needs})
