"""The one model-agnostic training loop, driven by the model's phases (after stylegan2-ada's
`training_loop.py`), with callbacks for reporting and checkpointing (after minGPT's `trainer.py`).

No Ray or MLflow here: the Ray Train adapter supplies the data stream, the device and the callbacks.
Under torch.distributed each phase's gradients are averaged across ranks with one flat all-reduce
(data-parallel SGD, the arithmetic of DDP) together with the loss, so every rank sees the same loss
and a NaN or Inf stops all ranks at the same step.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.distributed as dist

from components.config import TrainConfig
from components.data.shards import to_float
from components.models.base import GenerativeModel, Phase


class NonFiniteLossError(RuntimeError):
    """A phase produced a NaN or Inf loss; training cannot continue from this state."""

    def __init__(self, phase: str, step: int, epoch: int, value: float):
        self.phase, self.step, self.epoch, self.value = phase, step, epoch, value
        super().__init__(f"non-finite loss ({value}) in phase '{phase}' at step {step} (epoch {epoch + 1}); "
                         "lower the learning rate or check the data")


@dataclass
class LoopConfig:
    """One run of the loop: its length, this rank's place in the group, and the run settings (seed,
    checkpoint_every, log_every, precision, channels_last), declared once in params.train's TrainConfig."""

    epochs: int
    train: TrainConfig = field(default_factory=TrainConfig)
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    config: dict[str, Any] = field(default_factory=dict)  # stored in checkpoints: what ran
    validate: Callable[[GenerativeModel], dict[str, float]] | None = None  # rank 0, after each epoch: the tuning
    # objective, or the family's quality curve (components.evaluation.validation)


class Callbacks(Protocol):
    def on_epoch_end(self, epoch: int, metrics: dict[str, float], history: list[dict],
                     state: Callable[[], dict] | None) -> None:
        """Called on every rank after each epoch; `state` is given when a checkpoint is due."""

    def on_progress(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        """Called on rank 0 every log_every steps."""


def _allreduce_mean(phase: Phase, loss: torch.Tensor, world_size: int) -> torch.Tensor:
    """Average gradients of the phase's parameters and the loss across ranks in one flat buffer."""
    if world_size == 1 or not dist.is_initialized():
        return loss.detach()
    mean_loss = loss.detach().reshape(1).clone()
    _average_in_place([p.grad for p in phase.parameters if p.grad is not None] + [mean_loss], world_size)
    return mean_loss[0]


def _average_in_place(tensors: list[torch.Tensor], world_size: int) -> None:
    """Replace each tensor by its mean over ranks, with one all-reduce of one flat buffer."""
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """train.precision on this device: `auto` is bf16 where the hardware computes bf16 natively (a CUDA GPU that
    supports it; a CPU with AVX512-BF16 or AMX-BF16, where bf16 autocast made a training step 1.27-1.78x faster
    in bench/cpu_speed.py), else fp32, since emulated bf16 is slower than fp32."""
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    caps = torch.cpu.get_capabilities() if device.type == "cpu" and hasattr(torch.cpu, "get_capabilities") else {}
    return "bf16" if caps.get("avx512_bf16") or caps.get("amx_bf16") else "fp32"


def prepare_model(model: GenerativeModel, device: torch.device | str, channels_last: bool = False,
                  compile: bool = False) -> GenerativeModel:
    """Move to the device; NHWC weights for conv models; torch.compile each sub-network in place
    (nn.Module.compile keeps state_dict keys, so checkpoints and exports are unchanged), except the family's
    `eager_children` (where torch.compile fails on how the family uses them: a gradient penalty's double
    backward, a trunk called outside its compiled forward)."""
    model = model.to(device)
    if channels_last and any(isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    if compile:
        for name, child in model.named_children():
            if name not in model.eager_children:
                child.compile()
    return model


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    """uint8 batch -> float on the device: pinned, asynchronous copies of the uint8 pixels (4x fewer bytes
    than float32), converted on the device."""
    if device.type == "cuda":
        x, y = x.pin_memory(), y.pin_memory()
    x = to_float(x.to(device, non_blocking=True))
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def _broadcast_model(model: torch.nn.Module) -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def sync_buffers(model: torch.nn.Module, world_size: int) -> None:
    """Average floating-point buffers (batch-norm running statistics, which each rank accumulates on its own
    batches) across ranks, so evaluation, checkpoints and every rank see the same model. Parameters need
    nothing: averaged gradients keep them identical."""
    if world_size == 1 or not dist.is_initialized():
        return
    buffers = [b for b in model.buffers() if b.is_floating_point()]
    if buffers:
        _average_in_place(buffers, world_size)


def train(model: GenerativeModel, batches: Callable[[int], Iterator], cfg: LoopConfig, callbacks: Callbacks,
          state: dict | None = None) -> list[dict]:
    """Train `model` for cfg.epochs; `batches(epoch)` yields (uint8 images, labels) for this rank.

    `state` (from a checkpoint) restores model, optimizers, epoch, step and history, so a resumed run
    continues where the checkpoint left off; checkpoints record each resume point (epoch, step and the
    wall-clock time it restarted) under "resumes".
    Returns the per-epoch metric history.
    """
    device = torch.device(cfg.device)
    bf16 = resolve_precision(cfg.train.precision, device) == "bf16"
    optimizers = model.optimizers()
    phases = model.phases(optimizers)
    start_epoch, step, history, resumes = 0, 0, [], []
    if state is not None:
        model.load_state_dict(state["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        start_epoch, step, history = state["epoch"], state["step"], list(state["history"])
        resumes = list(state.get("resumes", [])) + [{"epoch": start_epoch, "step": step, "time": time.time()}]
    else:
        _broadcast_model(model)
    all_params = list(model.parameters())

    def snapshot() -> dict:  # references live tensors: serialize it before training continues
        return {"model": model.state_dict(), "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "epoch": epoch + 1, "step": step, "config": cfg.config, "history": list(history),
                "resumes": list(resumes)}

    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(hash((cfg.train.seed, cfg.rank, epoch)) & 0x7FFFFFFF)  # noise differs per rank and epoch
        model.train()
        model.schedule(optimizers, epoch, cfg.epochs)
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
        counts: dict[str, int] = defaultdict(int)
        data = iter(batches(epoch))
        t0, images, batch = time.perf_counter(), 0, None
        done = False
        while not done:
            for phase in phases:
                for _ in range(phase.repeat):
                    if batch is None or phase.uses_batch:
                        nxt = next(data, None)
                        if nxt is None:
                            done = True
                            break
                        x, y = nxt
                        batch = _to_device(x, y, device, cfg.train.channels_last)
                        images += x.shape[0]
                    trainable = {id(p) for p in phase.parameters}
                    for p in all_params:
                        p.requires_grad_(id(p) in trainable)
                    model.zero_grad(set_to_none=True)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                        loss, metrics = phase.loss(batch)
                    loss = loss.float()
                    loss.backward()
                    mean_loss = _allreduce_mean(phase, loss, cfg.world_size)
                    if not math.isfinite(mean_loss.item()):
                        raise NonFiniteLossError(phase.name, step, epoch, mean_loss.item())
                    optimizers[phase.optimizer].step()
                    if phase.after_step is not None:
                        phase.after_step()
                    for k, v in metrics.items():
                        sums[k] += v
                        counts[k] += 1
                if done:
                    break
            if done:
                break
            step += 1
            if cfg.rank == 0 and step % cfg.train.log_every == 0:
                callbacks.on_progress(epoch, step, {k: (sums[k] / counts[k]).item() for k in sums})
        for p in all_params:
            p.requires_grad_(True)
        sync_buffers(model, cfg.world_size)
        elapsed = time.perf_counter() - t0
        keys = sorted(sums)
        means = torch.stack([sums[k] / max(counts[k], 1) for k in keys]) if keys else torch.zeros(0)
        if cfg.world_size > 1 and dist.is_initialized() and keys:
            dist.all_reduce(means)
            means /= cfg.world_size
        metrics = {k: float(v) for k, v in zip(keys, means.tolist(), strict=True)}
        seen = (history[-1].get("images_seen", 0) if history else 0) + images * cfg.world_size
        metrics.update(epoch=epoch + 1, step=step, epoch_time_s=elapsed, images_seen=seen,
                       images_per_s=images * cfg.world_size / max(elapsed, 1e-9))
        if cfg.validate is not None and cfg.rank == 0:
            t_val = time.perf_counter()
            metrics.update(cfg.validate(model))  # e.g. the tuning objective
            metrics["validate_time_s"] = time.perf_counter() - t_val
            model.train()
        history.append(metrics)
        due = (epoch + 1) % cfg.train.checkpoint_every == 0 or epoch + 1 == cfg.epochs
        callbacks.on_epoch_end(epoch, metrics, history, snapshot if due else None)
    return history
