"""Narrow DVC dependencies: a family's stages depend on its own file and the shared model parts only,
so adding or editing one family reruns only that family's stages (the e2e test checks it with dvc)."""

import ast
import importlib

import yaml

from components.models import MODELS
from tests.conftest import REPO

SHARED = {"components.models.base", "components.models.layers", "components.models.losses", "components.models.common"}


def test_no_family_file_imports_another_family():
    for name, family in MODELS.items():
        module = importlib.import_module(family.Model.__module__)
        assert module.__name__ == f"components.models.{name}", f"{name} must live in components/models/{name}.py"
        tree = ast.parse(open(module.__file__).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("components.models"):
                targets = {node.module} if node.module != "components.models" else {f"components.models.{a.name}" for a in node.names}
                assert targets <= SHARED, f"{name} imports {targets - SHARED}: move shared code to base/layers/losses/common"


def test_model_stages_depend_on_their_own_family_file_not_the_folder():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in ("tune", "train"):
        deps = stages[stage]["do"]["deps"]
        assert "components/models/${key}.py" in deps, stage
        assert "${item}" in deps, f"{stage}: tune and train depend on what the model trains on"
        assert "components/models" not in deps and "components/models/__init__.py" not in deps, stage
        assert {f"components/models/{m.rsplit('.', 1)[1]}.py" for m in SHARED} <= set(deps), stage
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
    own = {f"components/models/{m.rsplit('.', 1)[1]}.py" for m in SHARED} | {"components/models/vae.py", "components/models/io.py"}
    assert {k for k in record if k.startswith("components/models/")} == own
    assert "components/evaluation/sample_metrics.py" in record and record["evaluate"] == params.evaluate.model_dump(mode="json")
    (tmp_path / "models/vae").mkdir(parents=True)
    (tmp_path / "models/vae/model.pt").write_bytes(b"one")
    first = inputs(params, "vae", {})
    (tmp_path / "models/vae/model.pt").write_bytes(b"two")
    assert inputs(params, "vae", {})["models/vae/model.pt"] != first["models/vae/model.pt"]
    assert inputs(params, "dcgan", {})["components/models/dcgan.py"] != "absent"
