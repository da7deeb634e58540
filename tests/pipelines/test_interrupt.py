"""`dvc repro` killed mid-training (SIGINT, then SIGKILL), then run again: it resumes from the last
checkpoint instead of step zero, and finishes with the same step count."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import leftover_ray_processes, ray_processes
from tests.pipelines.test_dvc_repro import make_repo, run

pytestmark = pytest.mark.slow
SLOW_VAE = {"pipeline": {"models": ["vae"]}, "data": {"n_train": 4096},
            "models": {"vae": {"arch": "conv", "conv_channels": 32, "latent_dim": 8, "epochs": 8, "batch_size": 32}}}


def _registered_checkpoints(repo: Path) -> list:
    """Checkpoints Ray Train has registered (it writes the directory about a second before it lists it
    in its snapshot; only listed checkpoints survive a kill of the controller)."""
    for snap in (repo / ".genzoo/ray").glob("vae-*/checkpoint_manager_snapshot.json"):
        try:
            return json.loads(snap.read_text()).get("checkpoint_results", [])
        except ValueError:  # being rewritten
            return []
    return []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_repro_resumes_from_the_last_checkpoint(tmp_path, sig):
    repo = make_repo(tmp_path / "repo", SLOW_VAE)
    before = ray_processes()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(repo))
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "train@vae"], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not _registered_checkpoints(repo) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert _registered_checkpoints(repo), "training never registered a checkpoint"
    registered = [r["metrics"]["epoch"] for r in _registered_checkpoints(repo)]
    os.killpg(proc.pid, sig)  # the whole process group: dvc, the stage, Ray's driver
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if sig == signal.SIGINT:
        assert proc.returncode != 0
    assert not (repo / "models/vae/model.pt").exists(), "no output from the interrupted run"
    left = leftover_ray_processes(before)
    assert not left, f"the interrupted stage left Ray processes behind: {left}"

    t0 = time.time()
    out = run([sys.executable, "-m", "dvc", "repro", "train@vae"], repo)
    assert "Running stage 'train@vae'" in out
    info = json.loads((repo / "models/vae/run.json").read_text())
    assert info["epochs"] == 8 and info["steps"] == 8 * (4096 // (32 * 2))
    assert info["resumed_from"] and info["resumed_from"][0]["epoch"] >= 1, "resumed, not restarted from step 0"
    assert not leftover_ray_processes(before)
    print(f"\n{sig.name}: killed with epochs {registered} registered; the rerun resumed at epoch "
          f"{info['resumed_from'][0]['epoch']} and finished all 8 in {time.time() - t0:.0f} s")
