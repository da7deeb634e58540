"""bench/harness.py's measurements on tiny data: each returns finite throughputs and the table renders
(the Ray side of the harness is the same `fit` the training tests exercise)."""

import importlib.util
import math

from components.config import load_config
from components.data import load_spec
from tests.conftest import REPO


def _harness():
    spec = importlib.util.spec_from_file_location("harness", REPO / "bench/harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_loop_data_path_and_device_table(tiny_project):
    h = _harness()
    params = load_config(tiny_project / "params.yaml")
    data_dir = params.path(params.data.out_dir)
    spec = load_spec(data_dir)
    cfg = params.model_config_for("dcgan").model_dump()
    plain = h.plain_loop("dcgan", cfg, spec, data_dir, images=256, epochs=2, threads=1)
    data = h.data_path(data_dir, spec, cfg["batch_size"], images=256, epochs=2)
    variants = h.device_variants("vae", params.model_config_for("vae").model_dump(), spec, data_dir, 256, 2, "cpu")
    assert plain["images_per_s"] > 0 and data["images_per_s"] > plain["images_per_s"]
    assert set(variants) == {"fp32_eager", "fp32_compiled", "bf16_eager", "bf16_compiled"}
    assert all(math.isfinite(v["images_per_s"]) and 0 <= v["data_share"] < 1 for v in variants.values())
    row = {"plain": plain, "ray_1": {"images_per_s": 1.0, "startup_s": 30.0}, "ray_2": {"images_per_s": 1.5},
           "data": data, "ray_vs_plain": 0.9, "two_vs_one": 1.5, "data_vs_consumption": 10.0}
    table = h.markdown({"date": "d", "machine": "m", "command": "c", "images": 256, "epochs": 2,
                        "models": {"dcgan": row}, "device": {"name": "cpu", "models": {"vae": variants}}})
    assert "| dcgan |" in table and "| vae |" in table and "**0.900**" in table
