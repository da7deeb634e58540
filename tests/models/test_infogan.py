"""InfoGAN (Chen et al. 2016): the mutual-information bound's gradient reaches both the generator and Q; the
semi-supervised option (Spurr et al. 2017) teaches Q the class of a fixed share of the real images."""

import pytest
import torch

from tests.models.test_contract import batch, spec, tiny


def test_mutual_information_term_trains_generator_and_q():
    torch.manual_seed(0)
    s = spec()
    model = tiny("infogan", s, info_weight=1.0)
    x, _ = batch(s)
    cat, cont = model.codes(8)
    fake = model.generator(model.compose(torch.randn(8, model.config.latent_dim), cat, cont))
    info, metrics = model._info(model.discriminator.features(fake), cat, cont)
    model.zero_grad()
    (-info).backward()
    g_grad = sum(p.grad.abs().sum() for p in model.generator.parameters() if p.grad is not None)
    q_grad = sum(p.grad.abs().sum() for p in model.q_head.parameters() if p.grad is not None)
    assert g_grad > 0 and q_grad > 0 and "mi_categorical" in metrics
    model.zero_grad()
    model.g_loss((x, None))[0].backward()  # and the generator's step carries it: G's loss is adv - lambda * MI
    assert all(p.grad is not None for p in model.generator.parameters())


def test_semi_supervision_labels_a_fixed_share_of_images():
    s = spec()
    x = torch.rand(4000, *s.shape).round()
    model = tiny("infogan", s, supervised_fraction=0.1)
    share = model.labelled(x).float().mean()
    assert 0.08 < share < 0.12 and torch.equal(model.labelled(x), model.labelled(x.clone()))  # fixed per image
    assert torch.equal(model.labelled(x[:100]), model.labelled(x)[:100])  # whatever the batch around it
    assert not tiny("infogan", s).labelled(x).any()


def test_semi_supervision_teaches_q_the_class_of_real_images():
    """With every image labelled, D's steps alone bring Q's cross-entropy on the real images' classes down;
    at 0 (the paper's InfoGAN) the loss has no such term."""
    torch.manual_seed(0)
    s = spec()
    model = tiny("infogan", s, supervised_fraction=1.0)
    x = torch.zeros(24, *s.shape)
    y = torch.arange(24) % 3
    for c in range(3):  # one bright band per class
        x[y == c, :, 10 * c : 10 * c + 8] = 1
    opt = model.optimizers()["D"]
    first = model.d_loss((x, y))[1]["q_supervised_ce"]
    for _ in range(40):
        opt.zero_grad()
        model.d_loss((x, y))[0].backward()
        opt.step()
    assert model.d_loss((x, y))[1]["q_supervised_ce"] < first / 4
    assert "q_supervised_ce" not in tiny("infogan", s).d_loss((x, y))[1]


def test_semi_supervision_needs_a_code_value_per_class():
    with pytest.raises(ValueError, match="models.infogan.supervised_fraction"):
        tiny("infogan", spec(), supervised_fraction=0.1, categorical=5)


def test_semi_supervised_q_reads_the_class_from_labelled_images_only():
    """Supervised, Q's categorical head learns from the labelled real images, not from G's samples (where it
    would learn whatever cue G gives the code); the continuous codes still learn from the samples."""
    torch.manual_seed(0)
    s = spec()
    x, y = batch(s)

    def grads(model):
        model.zero_grad()
        model.d_loss((x, y))[0].backward()
        last = model.q_head[-1].weight.grad  # (K + 2J, 128): categorical logits first
        return last[: model.k].abs().sum(), last[model.k :].abs().sum()

    no_labels = tiny("infogan", s, supervised_fraction=1e-9)  # supervised, but no image of this batch labelled
    assert not no_labels.labelled(x).any()
    cat, cont = grads(no_labels)
    assert cat == 0 and cont > 0
    cat, cont = grads(tiny("infogan", s))  # the paper's InfoGAN: Q reads both from the samples
    assert cat > 0 and cont > 0


def test_q_reads_real_images_on_their_batch_statistics_and_leaves_the_running_ones():
    """The trunk's running batch-norm statistics are mostly G's samples; Q reads a batch of real images on that
    batch's own statistics, as in training, so corrupting the running ones changes nothing, nor does the call."""
    torch.manual_seed(0)
    s = spec()
    model = tiny("infogan", s)
    x = torch.rand(32, *s.shape)
    before = model.predict_codes(x)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns
    for m in bns:
        m.running_mean += 5.0
    corrupted = [m.running_mean.clone() for m in bns]
    after = model.predict_codes(x)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(before, after, strict=True))
    assert all(torch.equal(m.running_mean, c) for m, c in zip(bns, corrupted, strict=True))  # not updated by the reading
    running = model.predict_codes(x, batch_stats=False)
    assert not torch.allclose(running[1], after[1], atol=1e-3)  # the running statistics would have moved it
    assert model.training  # the mode the model was in


def test_a_fixed_continuous_std_is_the_authors_gaussian_and_learned_is_the_default():
    """continuous_std fixes Q's Gaussian for the continuous codes (the authors' code: fix_std=True), so the bound
    is a squared error; null learns it per image from Q's head."""
    torch.manual_seed(0)
    s = spec()
    x = torch.rand(8, *s.shape) * 2 - 1
    fixed = tiny("infogan", s, continuous_std=0.5)
    _, mean, log_std = fixed.q(fixed.discriminator.features(x))
    assert mean.shape == (8, 2) and torch.allclose(log_std, torch.full_like(mean, -0.6931), atol=1e-4)
    learned = tiny("infogan", s)
    assert learned.q(learned.discriminator.features(x))[2].std() > 0
