"""ray_cluster.yaml against the schema that ships with Ray, and through Ray's own config preparation
and validation (offline: nothing is launched)."""

import json
from pathlib import Path

import jsonschema
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO


def load():
    return yaml.safe_load((REPO / "ray_cluster.yaml").read_text())


def test_matches_rays_schema():
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(load(), schema)


def test_passes_rays_preparation_and_validation():
    prepared = prepare_config(load())
    validate_config(prepared)
    types = prepared["available_node_types"]
    assert types["gpu_worker"]["resources"]["GPU"] >= 1 and "GPU" not in types["head"]["resources"]
    assert types["gpu_worker"]["min_workers"] == 0 and prepared["max_workers"] >= types["gpu_worker"]["max_workers"]


def test_installs_from_the_lockfile_and_ships_the_data():
    cfg = load()
    assert any("uv sync --frozen" in c for c in cfg["setup_commands"])
    assert cfg["file_mounts"]["~/genzoo/datasets/prepared"] == "./datasets/prepared"
    assert all("--dashboard-host=127.0.0.1" in c for c in cfg["head_start_ray_commands"] if "--head" in c)


def test_a_broken_config_is_refused():
    bad = load()
    bad["available_node_types"]["gpu_worker"]["min_workers"] = "many"
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError as err:
        assert "min_workers" in str(err.absolute_path) or "many" in err.message
    else:
        raise AssertionError("schema accepted min_workers: many")
