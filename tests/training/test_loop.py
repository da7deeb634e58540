"""The loop alone, in one process: phases, repeats, resume, non-finite losses."""

import io

import pytest
import torch

from components.config import TrainConfig
from components.data import ShardStream, load_spec
from components.models import build
from components.models.base import Phase
from components.training.loop import LoopConfig, NonFiniteLossError, train


class Recorder:
    def __init__(self):
        self.epochs, self.checkpoints = [], []

    def on_epoch_end(self, epoch, metrics, history, state):
        self.epochs.append(metrics)
        if state is not None:  # serialized at once, as the Ray callback does; loads without pickle
            buf = io.BytesIO()
            torch.save(state(), buf)
            buf.seek(0)
            self.checkpoints.append(torch.load(buf, weights_only=True))

    def on_progress(self, epoch, step, metrics):
        pass


def _setup(tiny_project, name="vae", **cfg):
    spec = load_spec(tiny_project / "datasets/prepared")
    torch.manual_seed(0)
    base = {"hidden_dim": 64, "latent_dim": 4} if name == "vae" else {"latent_dim": 4}
    model = build(name, {**base, **cfg}, spec)
    stream = ShardStream(tiny_project / "datasets/prepared", spec, "train", 64)
    return model, stream


def test_vae_trains_and_checkpoints_on_schedule(tiny_project):
    model, stream = _setup(tiny_project)
    rec = Recorder()
    history = train(model, stream.epoch, LoopConfig(epochs=4, train=TrainConfig(checkpoint_every=3)), rec)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["step"] == 4 * stream.steps_per_epoch
    assert history[-1]["neg_elbo"] < history[0]["neg_elbo"]
    assert [c["epoch"] for c in rec.checkpoints] == [3, 4], "every 3 epochs and always the last"
    ckpt = rec.checkpoints[-1]
    assert set(ckpt) >= {"model", "optimizers", "epoch", "step", "config", "history"}
    assert ckpt["optimizers"]["adam"]["state"], "optimizer state (Adam moments) is saved"


def test_resume_restores_weights_optimizer_and_step(tiny_project):
    model, stream = _setup(tiny_project)
    rec = Recorder()
    train(model, stream.epoch, LoopConfig(epochs=2), rec)
    state = rec.checkpoints[0]  # after epoch 1
    resumed, _ = _setup(tiny_project)
    rec2 = Recorder()
    history = train(resumed, stream.epoch, LoopConfig(epochs=2), rec2, state=state)
    assert [h["epoch"] for h in history] == [1, 2] and len(rec2.epochs) == 1, "only epoch 2 was run"
    (resume,) = rec2.checkpoints[-1]["resumes"]
    assert (resume["epoch"], resume["step"]) == (1, stream.steps_per_epoch) and resume["time"] > 0
    final = rec.checkpoints[-1]["model"]
    for k, v in rec2.checkpoints[-1]["model"].items():
        assert torch.allclose(v, final[k], atol=1e-5), f"resumed run diverged from the uninterrupted one at {k}"


def test_phase_repeat_and_after_step_hooks(tiny_project):
    model, stream = _setup(tiny_project, name="dcgan", g_channels=4, d_channels=4)
    calls = {"D": 0, "G": 0, "clip": 0}
    d_phase, g_phase = model.phases(model.optimizers())

    def count(phase):
        def loss(batch):
            calls[phase.name] += 1
            return phase.loss(batch)
        return loss

    phases = [Phase("D", "D", count(d_phase), d_phase.parameters, repeat=3,
                    after_step=lambda: calls.__setitem__("clip", calls["clip"] + 1)),
              Phase("G", "G", count(g_phase), g_phase.parameters, uses_batch=False)]
    model.phases = lambda optimizers: phases
    history = train(model, stream.epoch, LoopConfig(epochs=1), Recorder())
    steps = stream.steps_per_epoch // 3
    assert history[-1]["step"] == steps
    assert calls["G"] == steps and calls["D"] == calls["clip"] == stream.steps_per_epoch // 3 * 3 + stream.steps_per_epoch % 3


def test_g_steps_runs_the_generator_phase_that_many_times_per_discriminator_step(tiny_project):
    model, stream = _setup(tiny_project, name="dcgan", g_channels=4, d_channels=4, g_steps=2)
    rec = Recorder()
    history = train(model, stream.epoch, LoopConfig(epochs=1), rec)
    adam_steps = {name: int(next(iter(state["state"].values()))["step"])
                  for name, state in rec.checkpoints[-1]["optimizers"].items()}
    assert history[-1]["step"] == stream.steps_per_epoch
    assert adam_steps == {"D": stream.steps_per_epoch, "G": 2 * stream.steps_per_epoch}


def test_non_finite_loss_names_phase_and_step(tiny_project):
    model, stream = _setup(tiny_project, lr=1e30)
    with pytest.raises(NonFiniteLossError, match=r"phase 'elbo' at step \d+") as err:
        train(model, stream.epoch, LoopConfig(epochs=3), Recorder())
    assert err.value.phase == "elbo" and err.value.step < stream.steps_per_epoch * 3


@pytest.mark.parametrize("name", ["vae", "dcgan", "wgan", "wgan_gp"])
def test_bf16_autocast_trains_every_model_on_cpu(tiny_project, name):
    cfg = {"arch": "conv", "conv_channels": 8} if name == "vae" else {"g_channels": 4, "d_channels": 4}
    model, stream = _setup(tiny_project, name=name, **cfg)
    history = train(model, stream.epoch, LoopConfig(epochs=1, train=TrainConfig(precision="bf16", channels_last=True)), Recorder())
    assert all(torch.isfinite(torch.tensor(v)) for v in history[-1].values())
    assert all(p.dtype == torch.float32 for p in model.parameters()), "weights and optimizer state stay fp32"


def test_channels_last_computes_the_same_losses(tiny_project):
    from components.training.loop import prepare_model

    histories = []
    for channels_last in (False, True):
        model, stream = _setup(tiny_project, arch="conv", conv_channels=8)
        model = prepare_model(model, "cpu", channels_last=channels_last)
        if channels_last:
            conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
            assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        histories.append(train(model, stream.epoch, LoopConfig(epochs=1, train=TrainConfig(channels_last=channels_last)), Recorder()))
    assert histories[0][-1]["neg_elbo"] == pytest.approx(histories[1][-1]["neg_elbo"], rel=1e-3)


def test_compiled_model_trains_and_keeps_state_dict_keys(tiny_project):
    from components.training.loop import prepare_model

    model, stream = _setup(tiny_project)
    keys = set(model.state_dict())
    model = prepare_model(model, "cpu", compile=True)
    history = train(model, stream.epoch, LoopConfig(epochs=1), Recorder())
    assert torch.isfinite(torch.tensor(history[-1]["neg_elbo"]))
    assert set(model.state_dict()) == keys, "checkpoints and exports load into an uncompiled model"


def test_precision_auto_is_bf16_only_where_the_cpu_computes_it_natively(tiny_project, monkeypatch):
    from components.training.loop import resolve_precision

    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    for caps, expected in [({"avx512_bf16": True}, "bf16"), ({"amx_bf16": True}, "bf16"),
                           ({"avx512_bf16": False, "avx2": True}, "fp32"), ({}, "fp32")]:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        assert resolve_precision("auto", "cpu") == expected, caps
    # the loop autocasts to bf16 under auto exactly when resolve_precision says so: the VAE's loss differs
    histories = {}
    for caps in ({"avx512_bf16": True}, {}):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        model, stream = _setup(tiny_project)
        histories[bool(caps)] = train(model, stream.epoch, LoopConfig(epochs=1, train=TrainConfig(precision="auto")),
                                      Recorder())
    model, stream = _setup(tiny_project)
    fp32 = train(model, stream.epoch, LoopConfig(epochs=1, train=TrainConfig(precision="fp32")), Recorder())
    assert histories[False][-1]["neg_elbo"] == fp32[-1]["neg_elbo"]
    assert histories[True][-1]["neg_elbo"] != fp32[-1]["neg_elbo"]
    assert histories[True][-1]["neg_elbo"] == pytest.approx(fp32[-1]["neg_elbo"], rel=0.05)


@pytest.mark.parametrize("name, loss", [("wgan_gp", "critic_loss"), ("infogan", "d_loss")])
def test_compile_leaves_the_discriminators_it_cannot_compile_eager(tiny_project, name, loss):
    """With every sub-network compiled (the GPU profile's `compile: true`), the first D step crashed: WGAN-GP's
    penalty differentiates through the critic twice ("aot_autograd does not currently support double backward"),
    and InfoGAN's Q head calls the trunk outside its compiled forward ("modified by an inplace operation")."""
    from components.training.loop import prepare_model

    model, stream = _setup(tiny_project, name, g_channels=4, d_channels=4)
    model = prepare_model(model, "cpu", compile=True)
    history = train(model, stream.epoch, LoopConfig(epochs=1), Recorder())
    assert torch.isfinite(torch.tensor(history[-1][loss]))
    assert torch.isfinite(torch.tensor(history[-1]["g_loss"]))
    assert model.generator._compiled_call_impl is not None  # the generator is still compiled
    assert model.discriminator._compiled_call_impl is None


DDP_MODELS = {"dcgan": {"latent_dim": 8, "g_channels": 4, "d_channels": 4, "ema_decay": 0.9},
              "vqvae": {"codebook_size": 8, "code_dim": 4, "channels": 4, "ema_decay": 0.9}}


def _ddp_rank(rank: int, port: int, out: str, name: str) -> None:
    """One gloo rank: a tiny model trained on rank-specific data (DCGAN: batch norm in G and D and an EMA
    generator; VQ-VAE: an EMA codebook), then one more codebook update without the loop's buffer averaging."""
    import torch.distributed as dist

    from components.models import build
    from tests.models.test_contract import spec

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(rank)  # different initial weights: the loop must broadcast rank 0's
    model = build(name, DDP_MODELS[name], spec())

    def batches(epoch):
        g = torch.Generator().manual_seed(100 * rank + epoch)  # each rank sees other images
        for _ in range(3):
            yield (torch.rand(8, 1, 32, 32, generator=g) * 255).to(torch.uint8), torch.zeros(8, dtype=torch.long)

    train(model, batches, LoopConfig(epochs=2, rank=rank, world_size=2), Recorder())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if name == "vqvae":  # a step the loop's end-of-epoch buffer averaging does not follow
        model.train()
        model.losses(torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(rank)).round())
        state["codebook_after_step"] = model.quantizer.codebook.clone()
    torch.save(state, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("name", sorted(DDP_MODELS))
def test_two_ranks_end_with_identical_parameters_buffers_ema_and_codebooks(tmp_path, name):
    """Batch-norm running statistics differ per rank by construction; the loop averages them after each
    epoch, so both ranks (and rank 0's checkpoint) hold one model, EMA generator included. The VQ-VAE's EMA
    codebook update all-reduces its counts and sums, so codebooks agree after every step, not only after the
    loop's averaging (which alone would also break e_k = m_k / N_k)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_rank, args=(port, str(tmp_path), name), nprocs=2, start_method="spawn")
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert set(a) == set(b)
    if name == "dcgan":
        assert any("running_mean" in k for k in a) and any(k.startswith("generator_ema.") for k in a)
    else:
        n = a["quantizer.ema_count"].sum()
        count = (a["quantizer.ema_count"] + 1e-5) / (n + 8 * 1e-5) * n
        assert torch.allclose(a["quantizer.codebook"], a["quantizer.ema_sum"] / count[:, None], atol=1e-5)
    for k in a:
        assert torch.equal(a[k], b[k]), k
