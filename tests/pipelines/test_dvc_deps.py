"""Narrow DVC dependencies: a family's stages depend on exactly the model files it imports (its own file, base.py
and pipeline.models' code1-3), never the registry or another family's file, so adding or editing one family
reruns only the stages of the families that import it (the e2e test checks it with `dvc status`); the
evaluation's input record is exactly the family's import closure."""

import importlib
import shutil
from pathlib import Path

import yaml

from components.code import model_code
from components.config import pipeline_entry
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


def resolved_deps(root: Path, models: dict[str, dict]) -> dict[str, set[str]]:
    """Each stage's dependency paths as DVC itself resolves dvc.yaml over the given pipeline.models."""
    from dvc.repo import Repo

    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["pipeline"]["models"] = models
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    Repo.init(root, no_scm=True).close()
    with Repo(root) as repo:
        return {stage.name: {dep.def_path for dep in stage.deps} for stage in repo.index.stages}


def test_model_stages_depend_on_exactly_their_import_closure(tmp_path):
    """components.code.stage_code writes pipeline.models' code slots; resolved by DVC, every family's tune and train
    stages depend on exactly the model files it imports (and io.py, which saves every export): editing vae.py
    reruns vae and cvae, editing gan.py the GANs, editing layers.py the families that import it."""
    models = {name: pipeline_entry(name, f"models/{family.needs[0]}" if family.needs else "datasets/prepared")
              for name, family in MODELS.items()}  # every family, the opt-in ones too
    deps = resolved_deps(tmp_path, models)
    for name in MODELS:
        closure = {f for f in model_code(name) if f.startswith("components/models/")}
        for stage in ("tune", "train"):
            got = deps[f"{stage}@{name}"]
            assert {d for d in got if d.startswith("components/models")} == closure | {"components/models/io.py"}, \
                f"{stage}@{name}: its model files are its import closure"
            assert models[name]["data"] in got and "components/training" in got, f"{stage}@{name}"
    reruns = {f: {n for n in MODELS if f in deps[f"train@{n}"]} for f in ("components/models/vae.py",
                                                                         "components/models/gan.py")}
    assert reruns["components/models/vae.py"] == {"vae", "cvae"}
    assert reruns["components/models/gan.py"] == {"dcgan", "wgan", "wgan_gp", "cgan", "infogan", "sngan"}
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in ("tune", "train"):
        params = stages[stage]["do"]["params"]
        assert "tune" not in params and "models" not in params, f"{stage} reads every model's params"


def test_the_default_pipeline_entries_are_what_the_imports_say():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, entry in params["pipeline"]["models"].items():
        assert entry == pipeline_entry(name, entry["data"]), name


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


def test_the_code_slots_are_the_same_in_the_config_the_params_and_dvc_yaml():
    from components.code import SLOTS
    from components.config import ModelInputs

    assert tuple(ModelInputs.model_fields) == ("data", *SLOTS)
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["do"]["deps"]
    assert [d for d in deps if "${item.code" in d] == [f"components/models/${{item.{s}}}.py" for s in SLOTS]
