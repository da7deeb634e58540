"""Model registry: the name used in params.yaml (models.<name>) -> its family (config, module, capabilities).

Adding a family: its own file (config, model, FAMILY), one line here, its params.yaml sections, its test.
A family file imports shared parts (base, layers, losses, the GAN base gan.py) or the family it extends
(cvae -> vae, cpixelcnn -> pixelcnn); its DVC stages depend on that import closure (components.code), and
this registry is deliberately not a stage dependency.
"""

from components.models import (
    cgan,
    cpixelcnn,
    cvae,
    cyclegan,
    dcgan,
    infogan,
    pixelcnn,
    sngan,
    vae,
    vqvae,
    vqvae_prior,
    wgan,
    wgan_gp,
)
from components.models.base import Capabilities, Family, GenerativeModel, ModelConfig, Phase

MODELS: dict[str, Family] = {
    "vae": vae.FAMILY,
    "dcgan": dcgan.FAMILY,
    "wgan": wgan.FAMILY,
    "wgan_gp": wgan_gp.FAMILY,
    "cvae": cvae.FAMILY,
    "cgan": cgan.FAMILY,
    "infogan": infogan.FAMILY,
    "sngan": sngan.FAMILY,
    "pixelcnn": pixelcnn.FAMILY,
    "cpixelcnn": cpixelcnn.FAMILY,  # not in the default run (Family.default_run)
    "vqvae": vqvae.FAMILY,
    "vqvae_prior": vqvae_prior.FAMILY,  # built on vqvae (Family.needs)
    "cyclegan": cyclegan.FAMILY,
}

__all__ = ["MODELS", "Capabilities", "Family", "GenerativeModel", "ModelConfig", "Phase", "build"]


def build(name: str, config, spec, upstream: dict[str, GenerativeModel] | None = None) -> GenerativeModel:
    """Build model `name` from its config (a dict or its Config) for a prepared dataset's spec; a family built
    on another model's export (`Family.needs`) also takes the upstream models, {name: model}."""
    return MODELS[name].build(config, spec, upstream)
