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


def test_fixed_cost_table_and_projection(tmp_path):
    """The fixed-cost table from stage timings as the stages write them, and the whole-zoo projection."""
    import json

    h = _harness()
    (tmp_path / ".genzoo/timings").mkdir(parents=True)
    (tmp_path / "plots/train").mkdir(parents=True)
    stages = {"prepare": (10, 5), "tune@vae": (40, 20), "train@vae": (50, 30), "evaluate@vae": (20, 10),
              "train@dcgan": (60, 40), "evaluate@dcgan": (15, 8), "promote": (10, 0), "report": (5, 0)}
    for i, (stage, (wall, work)) in enumerate(stages.items()):
        (tmp_path / ".genzoo/timings" / f"{stage}.json").write_text(
            json.dumps({"stage": stage, "wall_s": wall, "work_s": work, "finished": i}))
    (tmp_path / "plots/train/dcgan.csv").write_text("epoch,epoch_time_s,images_per_s\n1,20,500\n2,20,500\n")
    fc = h.fixed_cost_table(tmp_path, 218.0, {"dcgan": 1000.0})  # 8 s of dvc: 1 s per stage
    assert list(fc["stages"])[:2] == ["prepare", "tune@vae"], "in the order the stages ran"
    assert fc["stages"]["train@dcgan"] == {"wall_s": 60, "work_s": 40, "fixed_s": 20, "plain_s": 20.0}
    assert fc["stages"]["dvc"] == {"wall_s": 8.0, "work_s": 0.0, "fixed_s": 8.0} and fc["shared_s"] == 28
    assert fc["families"]["vae"] == {"wall_s": 113, "fixed_s": 53, "tuned": True}
    assert fc["families"]["dcgan"] == {"wall_s": 77, "fixed_s": 29, "tuned": False}
    assert fc["shared_s"] + sum(f["wall_s"] for f in fc["families"].values()) == 218
    assert math.isclose(fc["fixed_share"], (218 - 113) / 218)
    p = h.projection(fc, zoo_models=4)
    assert p["missing"] == 2 and p["total_s"] == 218 + 2 * 77 and math.isclose(p["fixed_share"], (105 + 58) / 372)
    text = h.fixed_cost_markdown({"total_s": 218, "fixed_cost": fc})
    assert "| train@dcgan | 60 | 40 | 20 | 33% | 20 | 3.0x |" in text and "| vae | 113 | 53 | yes |" in text
