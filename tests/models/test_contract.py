"""The contract every registered model keeps, and each capability it declares: shapes, finite loss,
gradients, sample range, seeded sampling, labels honoured, latent space, encoder, likelihood, codes."""

import math

import pytest
import torch

from components.data.shards import DatasetSpec
from components.models import MODELS, build

VARIANTS = [(name, {}) for name in MODELS] + [("vae", {"arch": "conv"}), ("vae", {"likelihood": "gaussian"}),
                                            ("dcgan", {"loss": "minimax"}), ("cgan", {"loss": "non_saturating"}), ("cgan", {"aux_weight": 1.0}),
                                            ("sngan", {"attention": False}), ("dcgan", {"ema_decay": 0.9}),
                                            ("pixelcnn", {"arch": "masked"})]
TINY = {name: family.tiny for name, family in MODELS.items()}  # each family declares its small config
GAN = TINY["dcgan"]


def spec(binary=True, channels=1, resolution=32):
    return DatasetSpec(name="toy", resolution=resolution, channels=channels, classes=["a", "b", "c"], binary=binary,
                       counts={"train": 8}, shards={})


def batch(s, n=8):
    x = torch.rand(n, *s.shape)
    return (x.round() if s.binary else x), torch.arange(n) % s.num_classes


def tiny(name: str, s, **extra):
    """A tiny model; a family built on another (Family.needs) gets a tiny untrained upstream."""
    upstream = {m: build(m, TINY[m], s) for m in MODELS[name].needs}
    return build(name, {**TINY[name], **extra}, s, upstream or None)


@pytest.mark.parametrize("name,extra", VARIANTS, ids=lambda v: str(v))
@pytest.mark.parametrize("channels,resolution", [(1, 32), (3, 64)])
def test_model_contract(name, extra, channels, resolution):
    torch.manual_seed(0)
    s = spec(binary=extra.get("likelihood") != "gaussian", channels=channels, resolution=resolution)
    model = tiny(name, s, **extra)
    caps = MODELS[name].capabilities
    optimizers = model.optimizers()
    phases = model.phases(optimizers)
    assert phases and all(p.optimizer in optimizers for p in phases)
    b = batch(s)
    for phase in phases:
        model.zero_grad(set_to_none=True)
        loss, metrics = phase.loss(b)
        assert loss.dim() == 0 and math.isfinite(loss.item()), phase.name
        assert all(math.isfinite(float(v)) for v in metrics.values())
        loss.backward()
        grads = [p.grad for p in phase.parameters if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), f"{phase.name} gradients"
        assert any(g.abs().sum() > 0 for g in grads)
        optimizers[phase.optimizer].step()
        if phase.after_step is not None:
            phase.after_step()
    if caps.translation:
        check_translation(model, b, s)
        return
    samples = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, *s.shape)
    assert model.training, "sampling runs in eval mode and gives the training mode back"
    assert samples.min() >= 0 and samples.max() <= 1
    again = resolution == 32 or MODELS[name].curve_samples  # slow samplers (a pass per pixel): once is enough
    if again:
        assert torch.equal(samples, model.sample(5, generator=torch.Generator().manual_seed(0))), "seeded sampling"
    if caps.labels:
        y = torch.tensor([0, 1, 2, 0, 1])
        assert not again or model.sample(5, labels=y).shape == (5, *s.shape)
        with pytest.raises(ValueError, match="labels"):
            model.sample(2, labels=torch.tensor([0, 3]))
    else:
        with pytest.raises(ValueError, match="not conditional"):
            model.sample(2, labels=torch.tensor([0, 1]))
    if caps.latent:
        z = model.latent(3)
        labels = torch.tensor([0, 1, 2]) if caps.labels else None
        assert model.decode_latent(z, labels).shape == (3, *s.shape)
    if caps.encoder:
        mu, logvar = model.encode(b[0], b[1] if caps.labels else None)
        assert mu.shape == logvar.shape == (8, model.config.latent_dim)
    if caps.likelihood:
        ll = model.log_likelihood(b[0], b[1] if caps.likelihood_given_labels else None)
        assert ll.shape == (8,) and torch.isfinite(ll).all() and (ll <= 0).all()
    if caps.codebook:
        codes = model.encode_codes(b[0])
        assert codes.dtype == torch.long and codes.shape[0] == 8 and codes.dim() == 3
        assert 0 <= codes.min() and codes.max() < model.codebook_size
        decoded = model.decode_codes(codes)
        assert decoded.shape == (8, *s.shape) and decoded.min() >= 0 and decoded.max() <= 1
        assert model.reconstruct(b[0]).shape == (8, *s.shape)
    if caps.codes:
        probs, cont = model.predict_codes(b[0])
        assert probs.shape == (8, model.k) and torch.allclose(probs.sum(1), torch.ones(8))
        assert cont.shape == (8, model.j)
        assert model.code_traversal(4).shape[1:] == s.shape


def check_translation(model, b, s):
    """Translation families: both directions keep shape and range; cycling back returns an image; they do not sample."""
    for direction in ("a2b", "b2a"):
        out = model.translate(b[0], direction)
        assert out.shape == b[0].shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="direction"):
        model.translate(b[0], "a2c")
    with pytest.raises(NotImplementedError, match="does not sample"):
        model.sample(2)


def stripes(n: int, s) -> tuple[torch.Tensor, torch.Tensor]:
    """A tiny labelled set: class k is a bright vertical stripe in the k-th third of the image."""
    y = torch.arange(n) % 3
    x = torch.zeros(n, *s.shape)
    w = s.resolution // 3
    for k in range(3):
        x[y == k, :, :, k * w : (k + 1) * w] = 1.0
    return x, y


@pytest.mark.parametrize("name", sorted(n for n in MODELS if MODELS[n].capabilities.labels))
def test_conditional_model_draws_the_requested_class_after_training(name):
    """Trained briefly on three striped classes, a conditional model asked for class k puts most ink in
    stripe k (the stripe position is the class), and different labels with fixed noise differ."""
    torch.manual_seed(0)
    # a PixelCNN knows a column only through the image's left border in its receptive field: a 6x6 image
    s = spec(resolution=6 if name == "cpixelcnn" else 32)
    settings = {"cvae": {"lr": 1e-2}, "cgan": {"g_channels": 16, "d_channels": 16, "lr": 1e-3, "d_norm": "none", "aux_weight": 5.0,
                         "aux_on_fake": False},  # the defaults of params.yaml
                "cpixelcnn": {"channels": 16, "layers": 5, "lr": 1e-2}}
    model = tiny(name, s, **settings.get(name, {}))
    optimizers = model.optimizers()
    data = stripes(48, s)
    for _ in range(200):
        for phase in model.phases(optimizers):
            model.zero_grad(set_to_none=True)
            phase.loss(data)[0].backward()
            optimizers[phase.optimizer].step()
            if phase.after_step is not None:
                phase.after_step()
    w = s.resolution // 3
    for k in range(3):
        out = model.sample(16, labels=torch.full((16,), k), generator=torch.Generator().manual_seed(1))
        ink = torch.stack([out[..., j * w : (j + 1) * w].mean() for j in range(3)])  # mean intensity per stripe
        assert ink.argmax().item() == k, f"{name}: class {k} drew ink {ink.tolist()}"


def test_families_declare_their_objective_metric_and_figures():
    for name, fam in MODELS.items():
        caps = fam.capabilities
        assert fam.objective and fam.primary_metric, name
        assert ("translations" if caps.translation else "samples") in fam.figures, name
        assert ("reconstructions" in fam.figures) == (caps.encoder or caps.codebook), name
        if caps.likelihood == "bound":
            assert "elbo" in fam.objective and "nll" not in fam.primary_metric, name
        if caps.likelihood is None and not caps.translation:
            assert fam.objective == "val_fid" and fam.primary_metric == "fid", name
        assert ("class_grid" in fam.figures) == caps.labels, name
    assert MODELS["cvae"].primary_metric == "test_neg_iwae_given_y_nats"
    assert MODELS["vqvae_prior"].primary_metric == "test_neg_elbo_nats", "a deterministic posterior: no IWAE"


def test_registry_names_match_params_sections():
    import yaml

    from tests.conftest import REPO

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(params["models"]) <= set(MODELS)
    assert set(params["pipeline"]["models"]) <= set(MODELS)
