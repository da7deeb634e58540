import torch

from components.models import build
from components.models.losses import gradient_penalty
from tests.models.test_contract import batch, spec

TINY = {"latent_dim": 8, "g_channels": 4, "d_channels": 4}


def test_wgan_critic_weights_stay_within_the_clip_after_every_step():
    torch.manual_seed(0)
    model = build("wgan", {**TINY, "clip_value": 0.02, "lr": 0.5}, spec())  # a huge lr pushes weights out
    opts = model.optimizers()
    critic, gen = model.phases(opts)
    assert critic.repeat == 5 and critic.after_step is not None
    for _ in range(3):
        model.zero_grad()
        loss, _ = critic.loss(batch(spec()))
        loss.backward()
        opts["D"].step()
        critic.after_step()
        assert max(p.abs().max().item() for p in model.discriminator.parameters()) <= 0.02 + 1e-7
    assert isinstance(opts["D"], torch.optim.RMSprop) and opts["D"].defaults["lr"] == 0.5


def test_gradient_penalty_of_a_linear_critic_is_analytic():
    """f(x) = w.x has gradient w everywhere: the penalty is (||w|| - 1)^2 whatever the interpolates."""
    w = torch.randn(1, 3, 8, 8)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(16, 3, 8, 8), torch.randn(16, 3, 8, 8)
    expected = (w.norm() - 1) ** 2
    assert torch.allclose(gradient_penalty(critic, real, fake), expected, rtol=1e-5)
    unit = w / w.norm()
    assert gradient_penalty(lambda x: (x * unit).flatten(1).sum(1), real, fake).item() < 1e-10


def test_interpolation_weight_is_drawn_per_sample_not_per_pixel():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    real, fake = torch.ones(4, 1, 4, 4), torch.zeros(4, 1, 4, 4)
    gradient_penalty(critic, real, fake)
    x_hat = seen[0]  # = eps per sample
    per_sample = x_hat.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample)), "one eps per sample"
    assert per_sample[:, 0].unique().numel() == 4


def test_wgan_gp_critic_has_no_batch_norm_and_uses_adam_0_09():
    model = build("wgan_gp", TINY, spec())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    opts = model.optimizers()
    assert opts["D"].defaults["betas"] == (0.0, 0.9) and opts["D"].defaults["lr"] == 1e-4
    critic, _ = model.phases(opts)
    assert critic.after_step is None and critic.repeat == 5
    loss, metrics = critic.loss(batch(spec()))
    assert "gradient_penalty" in metrics and torch.isfinite(loss)
