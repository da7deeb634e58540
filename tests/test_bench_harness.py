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
    stages = {"prepare": (10, 5), "tune@vae": (40, 20), "train@vae": (50, 30), "train@dcgan": (60, 40),
              "evaluate@vae": (20, 10), "evaluate@dcgan": (15, 8), "evaluate": (8, 0), "promote": (10, 0), "report": (5, 0)}
    for i, (stage, (wall, work)) in enumerate(stages.items()):
        part = {"part_of": "evaluate"} if stage.startswith("evaluate@") else {}  # one evaluate process, a row per model
        (tmp_path / ".genzoo/timings" / f"{stage}.json").write_text(
            json.dumps({"stage": stage, "wall_s": wall, "work_s": work, "finished": i, **part}))
    (tmp_path / "plots/train/dcgan.csv").write_text("epoch,epoch_time_s,images_per_s\n1,20,500\n2,20,500\n")
    fc = h.fixed_cost_table(tmp_path, 225.0, {"dcgan": 1000.0})  # 7 s of dvc: 1 s per stage process
    assert list(fc["stages"])[:2] == ["prepare", "tune@vae"], "in the order the stages ran"
    assert fc["stages"]["train@dcgan"] == {"wall_s": 60, "work_s": 40, "fixed_s": 20, "plain_s": 20.0}
    assert fc["stages"]["dvc"] == {"wall_s": 7.0, "work_s": 0.0, "fixed_s": 7.0} and fc["shared_s"] == 37
    assert fc["families"]["vae"] == {"wall_s": 112, "fixed_s": 52, "tuned": True}
    assert fc["families"]["dcgan"] == {"wall_s": 76, "fixed_s": 28, "tuned": False}
    assert fc["shared_s"] + sum(f["wall_s"] for f in fc["families"].values()) == 225
    assert math.isclose(fc["fixed_share"], (225 - 113) / 225)
    p = h.projection(fc, zoo_models=4)
    assert p["missing"] == 2 and p["total_s"] == 225 + 2 * 76 and math.isclose(p["fixed_share"], (112 + 56) / 377)
    text = h.fixed_cost_markdown({"total_s": 218, "fixed_cost": fc})
    assert "| train@dcgan | 60 | 40 | 20 | 33% | 20 | 3.0x |" in text and "| vae | 112 | 52 | yes |" in text
