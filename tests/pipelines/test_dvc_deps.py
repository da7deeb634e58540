"""Narrow DVC dependencies: a family's stages depend on its own file, the shared model parts and the bases a
family may extend, never the registry, so adding or editing one family reruns only that family's stages (the
e2e test checks it with dvc); the evaluation's input record is exactly the family's import closure."""

import importlib

import yaml

from components.code import model_code
from components.models import MODELS
from tests.conftest import REPO

BASES = {"components/models/gan.py", "components/models/vae.py", "components/models/pixelcnn.py"}  # extended by families


def test_each_family_lives_in_the_file_named_after_it_and_imports_only_shared_parts_or_a_base():
    shared = {"components/models/base.py", "components/models/layers.py", "components/models/losses.py"} | BASES
    for name, family in MODELS.items():
        module = importlib.import_module(family.Model.__module__)
        assert module.__name__ == f"components.models.{name}", f"{name} must live in components/models/{name}.py"
        own = f"components/models/{name}.py"
        others = {f for f in model_code(name) if f.startswith("components/models/")} - {own}
        assert others <= shared, f"{name} imports {others - shared}: a family imports shared parts or a base only"


def test_model_stages_depend_on_their_whole_import_closure_not_the_folder():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in ("tune", "train"):
        deps = [d for d in stages[stage]["do"]["deps"]]
        assert "${item}" in deps, f"{stage}: tune and train depend on what the model trains on"
        assert "components/models" not in deps and "components/models/__init__.py" not in deps, stage
        assert "components/training" in deps and "components/models/io.py" in deps, stage
        for name in MODELS:  # every file that defines the family's training (components.code.model_code)
            covered = {d.replace("${key}", name) for d in deps}
            missing = {f for f in model_code(name) if not f.startswith("components/training/")} - covered
            assert not missing, f"{stage}@{name} does not depend on {missing}"
        params = stages[stage]["do"]["params"]
        assert "tune" not in params and "models" not in params, f"{stage} reads every model's params"


def test_one_evaluate_stage_keeps_a_model_whose_own_inputs_did_not_change(tmp_path):
    """The evaluate stage (all models) records what each evaluation read: its own family file and the shared
    parts, never another family's file or the registry, so editing one family re-evaluates that family only."""
    from components.config import load_config
    from pipelines.evaluate import inputs
    from tests.conftest import write_params

    params = load_config(write_params(tmp_path))
    cache = {}
    record = inputs(params, "vae", cache)
    own = {f for f in model_code("vae") if f.startswith("components/models/")} | {"components/models/io.py"}
    assert {k for k in record if k.startswith("components/models/")} == own
    assert "components/models/vae.py" in inputs(params, "cvae", cache), "cvae's evaluation runs the VAE it extends"
    assert "components/models/gan.py" not in record
    assert "components/evaluation/sample_metrics.py" in record and record["evaluate"] == params.evaluate.model_dump(mode="json")
    (tmp_path / "models/vae").mkdir(parents=True)
    (tmp_path / "models/vae/model.pt").write_bytes(b"one")
    first = inputs(params, "vae", {})
    (tmp_path / "models/vae/model.pt").write_bytes(b"two")
    assert inputs(params, "vae", {})["models/vae/model.pt"] != first["models/vae/model.pt"]
    assert inputs(params, "dcgan", {})["components/models/dcgan.py"] != "absent"
