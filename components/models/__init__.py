"""Model registry: the name used in params.yaml (models.<name>) -> its family (config class, module)."""

from components.models import dcgan, vae, wgan
from components.models.base import Family, GenerativeModel, ModelConfig, Phase

MODELS: dict[str, Family] = {
    "vae": vae.FAMILY,
    "dcgan": dcgan.FAMILY,
    "wgan": wgan.WGAN_FAMILY,
    "wgan_gp": wgan.WGAN_GP_FAMILY,
}

__all__ = ["MODELS", "Family", "GenerativeModel", "ModelConfig", "Phase", "build"]


def build(name: str, config, spec) -> GenerativeModel:
    """Build model `name` from its config (a dict or its Config) for a prepared dataset's spec."""
    return MODELS[name].build(config, spec)
