"""VQ-VAE: the straight-through gradient, the commitment and codebook terms, the EMA codebook update, and
the prior: built on a VQ-VAE it keeps frozen, whose two-stage bound uses the learned prior."""

import math

import pytest
import torch

from components.models import build
from tests.models.test_contract import TINY, spec


def binary_batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 32, 32, generator=g) > 0.7).float()


def _taps(model):
    """Capture z_e (the encoder output) and the decoder input, keeping their gradients."""
    seen = {}

    def enc_hook(_m, _inp, out):
        out.retain_grad()
        seen["z_e"] = out

    def dec_hook(_m, inp):
        inp[0].retain_grad()
        seen["z_st"] = inp[0]

    model.encoder.register_forward_hook(enc_hook)
    model.decoder.register_forward_pre_hook(dec_hook)
    return seen


@pytest.mark.parametrize("ema_decay", [0.99, 0.0])
def test_straight_through_copies_the_decoder_gradient_and_commitment_adds_beta_term(ema_decay):
    torch.manual_seed(0)
    beta = 0.25
    model = build("vqvae", {**TINY["vqvae"], "beta": beta, "ema_decay": ema_decay}, spec())
    model.eval()  # no EMA update during the check
    seen = _taps(model)
    x = binary_batch()
    terms = model.losses(x)
    (terms["recon_nats"] + beta * terms["commitment"]).backward()
    z_e, z_st = seen["z_e"], seen["z_st"]
    z_q = z_st.detach()  # the decoder's input has z_q's value
    assert not torch.equal(z_e.detach(), z_q), "the quantizer moved the encoder output"
    expected = z_st.grad + beta * 2 * (z_e.detach() - z_q) / x.shape[0]  # d/dz_e of mean_b sum (z_e - sg z_q)^2
    assert torch.allclose(z_e.grad, expected, atol=1e-6), "straight-through + commitment gradient"


def test_commitment_does_not_move_the_codebook_and_the_codebook_term_does_not_move_the_encoder():
    torch.manual_seed(0)
    model = build("vqvae", {**TINY["vqvae"], "ema_decay": 0.0}, spec())
    x = binary_batch()
    model.losses(x)["commitment"].backward()
    assert model.quantizer.codebook.grad is None or model.quantizer.codebook.grad.abs().sum() == 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    model.zero_grad(set_to_none=True)
    model.losses(x)["codebook"].backward()
    assert model.quantizer.codebook.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.encoder.parameters())


def test_ema_update_moves_used_codes_toward_their_assigned_encoder_outputs():
    torch.manual_seed(0)
    model = build("vqvae", {**TINY["vqvae"], "ema_decay": 0.5, "restart_below": 0.0}, spec())
    q = model.quantizer
    before = q.codebook.clone()
    z_e = torch.randn(4, q.codebook.shape[1], 2, 2)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    codes = q.nearest(flat)
    q.train()
    q(z_e)
    k = codes[0].item()
    assigned = flat[codes == k]
    count = 0.5 * 0 + 0.5 * len(assigned)  # N_k started at 0
    total = 0.5 * before[k] + 0.5 * assigned.sum(0)
    n = 0.5 * len(flat)
    smoothed = (count + q.eps) / (n + q.k * q.eps) * n
    assert torch.allclose(q.codebook[k], total / smoothed, atol=1e-5)
    q.eval()
    q(z_e)
    assert torch.allclose(q.codebook[k], total / smoothed, atol=1e-5), "no update outside training"


def test_unused_codes_are_reseeded_from_the_batch():
    torch.manual_seed(0)
    model = build("vqvae", {**TINY["vqvae"], "ema_decay": 0.9, "restart_below": 1.0}, spec())
    q = model.quantizer.train()
    z_e = torch.randn(2, q.codebook.shape[1], 4, 4) + 5  # far from the initial codebook: one code takes everything
    q(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    used = q.nearest(flat).unique()
    assert len(used) > 1, "restarted codes sit on encoder outputs and win some of them"
    assert (q.codebook - 5).abs().mean() < 2, "every code now lives among the encoder outputs"


def test_prior_keeps_its_vqvae_frozen_and_its_bound_replaces_the_uniform_prior():
    torch.manual_seed(0)
    s = spec()
    vq = build("vqvae", TINY["vqvae"], s)
    prior = build("vqvae_prior", TINY["vqvae_prior"], s, {"vqvae": vq})
    x = binary_batch()
    frozen = {k: v.clone() for k, v in vq.state_dict().items()}
    optimizers = prior.optimizers()
    prior.train()
    assert not vq.training, "the upstream stays in eval mode (no EMA codebook updates)"
    for _ in range(3):
        for phase in prior.phases(optimizers):
            prior.zero_grad(set_to_none=True)
            phase.loss((x, None))[0].backward()
            optimizers[phase.optimizer].step()
    assert all(torch.equal(v, vq.state_dict()[k]) for k, v in frozen.items()), "the VQ-VAE did not change"
    codes = vq.encode_codes(x)
    h, w = vq.code_shape
    assert torch.allclose(vq.log_likelihood(x), vq.decoder_log_prob(x, codes) - h * w * math.log(vq.codebook_size))
    assert torch.allclose(prior.log_likelihood(x), vq.decoder_log_prob(x, codes) + prior.code_log_prob(codes))
    assert set(prior.state_dict()) >= {f"upstream.vqvae.{k}" for k in vq.state_dict()}, "exports are self-contained"


def test_codes_under_bf16_autocast_are_the_fp32_codes():
    """train.precision bf16 (auto on an AVX512-BF16 CPU) runs training steps under autocast. Before this test the
    code distances went through a bf16 matmul (the VQ-VAE's perplexity fell from 39 to 31 in a main job) and the
    prior's frozen encoder ran in bf16, so the prior learned other codes than evaluation computes: validation
    -ELBO 299 nats against 114 in fp32."""
    torch.manual_seed(0)
    vq = build("vqvae", {**TINY["vqvae"], "codebook_size": 64, "code_dim": 16}, spec()).eval()
    x = binary_batch(64)
    z_e = vq.encoder(x * 2 - 1)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])  # (B*h*w, D)
    fp32 = vq.encode_codes(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(vq.encode_codes(x), fp32)
        assert torch.equal(vq.quantizer.nearest(flat), vq.quantizer.nearest(flat.float()))
    assert torch.equal(vq.quantizer.nearest(flat), fp32.flatten())


def test_prior_code_distribution_sums_to_one_over_all_tiny_code_maps():
    """The prior is a normalized distribution over code maps: 2x2 maps (an 8x8 image) with K=2 codes."""
    import itertools

    torch.manual_seed(0)
    s = spec(resolution=8)
    vq = build("vqvae", {**TINY["vqvae"], "codebook_size": 2}, s)
    prior = build("vqvae_prior", TINY["vqvae_prior"], s, {"vqvae": vq}).eval()
    maps = torch.tensor(list(itertools.product([0, 1], repeat=4))).reshape(16, 2, 2)
    assert prior.code_log_prob(maps).exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_prior_samples_by_rows_the_code_maps_of_whole_map_passes():
    """`sample_codes` computes each position's prediction from the rows above and the columns left of it
    (`GatedStack.raster`): the same code maps as a pass of the whole network over the whole map per position."""
    torch.manual_seed(0)
    s = spec()
    vq = build("vqvae", TINY["vqvae"], s)
    prior = build("vqvae_prior", {**TINY["vqvae_prior"], "layers": 2}, s, {"vqvae": vq}).eval()
    for p in prior.own_parameters():
        torch.nn.init.normal_(p, 0, 0.5)
    h, w = vq.code_shape
    assert prior.net.reach < min(h, w) - 1, "the rows and columns reached are fewer than the map's"
    n, g = 6, torch.Generator().manual_seed(1)
    full = torch.zeros(n, h, w, dtype=torch.long)
    with torch.no_grad():
        for i in range(h):
            for j in range(w):
                probs = prior.code_logits(full)[:, :, i, j].softmax(1)
                full[:, i, j] = torch.multinomial(probs, 1, generator=g).squeeze(1)
    assert full.unique().numel() > 2, "a near-constant map would hide a difference"
    assert torch.equal(prior.sample_codes(n, torch.Generator().manual_seed(1)), full)
