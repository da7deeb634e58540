"""End to end: `dvc repro` in a temporary git repo with tiny params, then a no-op rerun, then a
one-parameter experiment that reruns only the stages that read that parameter (and the report)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, leftover_ray_processes, ray_processes, write_params

pytestmark = pytest.mark.slow


def run(cmd, cwd, timeout=900, stdout_only=False):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(cwd))
    env.pop("VIRTUAL_ENV", None)
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout if stdout_only else res.stdout + res.stderr


def changed_stages(repo: Path) -> set[str]:
    """Stages `dvc status` reports as changed (their own dependencies changed)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(repo))
    res = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stdout))


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def experiments(shown) -> list[tuple[float, float]]:
    """(models.vae.kl_weight, the VAE's test -ELBO) of every experiment in `dvc exp show --json`'s output."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and node.get("name"):
                kl = data.get("params", {}).get("params.yaml", {}).get("data", {}).get("models", {}).get("vae", {})
                elbo = data.get("metrics", {}).get("metrics/vae.json", {}).get("data", {}).get("test_neg_elbo_nats")
                if "kl_weight" in kl and elbo is not None:
                    found.append((float(kl["kl_weight"]), float(elbo)))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(shown)
    return found


def make_repo(root: Path, extra: dict | None = None) -> Path:
    for item in ("components", "pipelines"):
        shutil.copytree(REPO / item, root / item, ignore=shutil.ignore_patterns("__pycache__"))
    for item in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(REPO / item, root / item)
    write_params(root, extra)
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "ci@genzoo"], root)
    run(["git", "config", "user.name", "ci"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny project"], root)
    return root


STACKED = {  # a model built on another's export, beside the VAE (GANs' evaluation is tests/evaluation's; their
    # two-optimizer DDP steps are tests/training/test_loop.py's)
    "pipeline": {"models": {"vae": "datasets/prepared", "vqvae": "datasets/prepared",
                            "vqvae_prior": "models/vqvae"}},
    "models": {"vqvae": {"codebook_size": 8, "code_dim": 4, "channels": 8, "epochs": 1},
               "vqvae_prior": {"channels": 4, "layers": 1, "epochs": 1}},
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("e2e"), STACKED)


def test_full_pipeline_then_noop_then_one_param(repo):
    before = ray_processes()
    out = run([sys.executable, "-m", "dvc", "repro"], repo)
    assert not leftover_ray_processes(before), "every stage shuts its local Ray down"
    models = ("vae", "vqvae", "vqvae_prior")
    assert ran_stages(out) == {"prepare", "featurize", "evaluate", "promote", "report"} | {f"{s}@{m}" for s in ("tune", "train")
                                                                                            for m in models}
    assert all(f"evaluated {m}: " in out for m in models), out[-3000:]
    timings = {f.stem for f in (repo / ".genzoo/timings").glob("*.json")}
    assert {"evaluate"} | {f"evaluate@{m}" for m in models} <= timings, "one row per model's evaluation, and start-up"
    promoted = {m: json.loads((repo / f"promotion/{m}.json").read_text()) for m in models}
    assert promoted["vae"]["promoted"] is True and {d["version"] for d in promoted.values()} == {1}
    for name in ("vae", "vqvae"):  # train@<m> depends on it: nothing that differs between identical sweeps
        assert not {"sweep_run_id", "wall_time_s", "work_s"} & set(json.loads((repo / f"tuned/{name}.json").read_text()))
    vae = json.loads((repo / "metrics/vae.json").read_text())
    assert vae["test_neg_elbo_nats"] > 0 and vae["protocol"]["n_real"] == 256
    for name in ("vae", "vqvae"):
        assert (repo / f"models/{name}/model.pt").is_file()
        assert (repo / f"evaluation/{name}/samples.png").is_file()
        assert (repo / f"plots/train/{name}.csv").read_text().startswith("epoch,")
    header = (repo / "plots/train/vae.csv").read_text().splitlines()[0].split(",")
    assert {"images_seen", "val_neg_elbo", "q_fid", "q_precision", "q_recall"} <= set(header), header
    assert (repo / "evaluation/vae/traversal.png").is_file() and (repo / "mlflow.db").is_file()
    page = (repo / "reports/index.html").read_text()
    assert "<table>" in page and page.count("data:image/png;base64,") == 14  # vae 5 figures, the others 3; a curve each
    assert "real data (train vs test, N = 256)" in page  # the tiny val split (128) is smaller than N and (repo / "metrics/real.json").is_file()
    prior = json.loads((repo / "models/vqvae_prior/resolved_config.json").read_text())
    assert prior["upstream"]["vqvae"]["file"] == "models/vqvae/model.pt"
    assert json.loads((repo / "metrics/vqvae_prior.json").read_text())["test_neg_elbo_nats"] > 0

    again = run([sys.executable, "-m", "dvc", "repro"], repo)
    assert ran_stages(again) == set(), again

    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline"], repo)
    evaluated = {m: (repo / f"metrics/{m}.json").read_bytes() for m in models}
    exp = run([sys.executable, "-m", "dvc", "exp", "run", "-S", "models.vae.kl_weight=2.0"], repo)
    assert ran_stages(exp) == {"tune@vae", "train@vae", "evaluate", "promote", "report"}, exp
    # one evaluate stage for all models: only the VAE, whose export changed, is evaluated again
    assert "evaluated vae: " in exp and all(f"evaluate {m}: unchanged" in exp for m in models if m != "vae"), exp
    assert all((repo / f"metrics/{m}.json").read_bytes() == evaluated[m] for m in models if m != "vae")
    # one promote stage for all models: only the VAE, whose run changed, gets a second version
    again = {m: json.loads((repo / f"promotion/{m}.json").read_text()) for m in models}
    assert again["vae"]["version"] == 2 and again["vae"]["run_id"] != promoted["vae"]["run_id"]
    assert all(again[m] == promoted[m] for m in models if m != "vae"), "unchanged models keep their decision"
    resolved = json.loads((repo / "models/vae/resolved_config.json").read_text())
    assert resolved["model_config"]["kl_weight"] == 2.0
    shown = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], repo)
    assert "test_neg_elbo_nats" in shown

    # queued experiments run one after the other, each in a copy of the project under .dvc/tmp/exps that DVC deletes
    # afterwards; their runs and registered versions still belong in this project's store (and the copies' run.json
    # files name that store), and `dvc exp show` records both with their metrics
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "kl_weight 2"], repo)
    for kl in (3.0, 4.0):
        run([sys.executable, "-m", "dvc", "exp", "run", "--queue", "-S", f"models.vae.kl_weight={kl}"], repo)
    run([sys.executable, "-m", "dvc", "queue", "start"], repo)
    deadline, status = time.time() + 900, ""
    while time.time() < deadline and (len(re.findall(r"\bSuccess\b", status)) < 2 and "Failed" not in status):
        time.sleep(5)
        status = run([sys.executable, "-m", "dvc", "queue", "status"], repo)
    failed = re.search(r"^([0-9a-f]{7})\s.*\bFailed\b", status, re.M)
    logs = subprocess.run([sys.executable, "-m", "dvc", "queue", "logs", failed.group(1)], cwd=repo, capture_output=True,
                          text=True, timeout=120).stdout if failed else ""
    assert len(re.findall(r"\bSuccess\b", status)) == 2, f"{status}\n{logs[-3000:]}"
    recorded = dict(experiments(json.loads(run([sys.executable, "-m", "dvc", "exp", "show", "--json"], repo,
                                               stdout_only=True))))
    assert {3.0, 4.0} <= set(recorded) and all(recorded[kl] > 0 for kl in (3.0, 4.0)), recorded
    import sqlite3

    con = sqlite3.connect(repo / "mlflow.db")
    versions = sorted(v for (v,) in con.execute("select version from model_versions where name = 'genzoo-vae'"))
    con.close()
    assert versions == [1, 2, 3, 4], f"the queued experiments registered versions 3 and 4 here: {versions}"

    # a file a family imports reruns that family, the families built on it by import, and no other
    with open(repo / "components/models/vae.py", "a") as f:
        f.write("\n# an edit to the VAE, which cvae extends\n")
    assert changed_stages(repo) == {"tune@vae", "train@vae", "evaluate"}, "not vqvae's or the prior's"
    run(["git", "checkout", "components/models/vae.py"], repo)
    with open(repo / "components/models/layers.py", "a") as f:
        f.write("\n# an edit to the shared layers\n")
    assert changed_stages(repo) == {"tune@vae", "train@vae", "tune@vqvae_prior", "train@vqvae_prior", "evaluate"}, \
        "vqvae imports no layers"
    run(["git", "checkout", "components/models/layers.py"], repo)

    # narrow dependencies: editing one family's file and adding a line to the registry (what a new family
    # does) leave every other family's stages up to date
    with open(repo / "components/models/vqvae.py", "a") as f:
        f.write("\n# an edit to the VQ-VAE family\n")
    with open(repo / "components/models/__init__.py", "a") as f:
        f.write("\n# a new family's registry line\n")
    assert changed_stages(repo) == {"tune@vqvae", "train@vqvae", "evaluate"}, "not the prior built on it"
    # ... and the rerun trains the edited code afresh: the finished run's checkpoint has another code key
    out = run([sys.executable, "-m", "dvc", "repro", "-s", "train@vqvae"], repo)
    assert "[vqvae] checkpoint key vqvae-" in out and "training afresh" in out and "resuming" not in out, out[-3000:]
    assert json.loads((repo / "models/vqvae/run.json").read_text())["resumed_from"] == []
    run(["git", "checkout", "components/models/vqvae.py", "components/models/__init__.py"], repo)

    # a model built on another reruns when that model's export changes, and only then (the vae experiment
    # above left it alone): retrain the VQ-VAE alone, and the prior's tune and train stages are out of date
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("code_dim: 4", "code_dim: 3"))
    out = run([sys.executable, "-m", "dvc", "repro", "-s", "train@vqvae"], repo)
    assert ran_stages(out) == {"train@vqvae"}, out
    changed = changed_stages(repo)
    assert {"tune@vqvae_prior", "train@vqvae_prior"} <= changed, changed
    assert not {s for s in changed if s.endswith("@vae")}, changed
