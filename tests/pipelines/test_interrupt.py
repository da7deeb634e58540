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


def _start(repo: Path) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(repo))
    env.pop("VIRTUAL_ENV", None)
    return subprocess.Popen([sys.executable, "-m", "dvc", "repro", "train@vae"], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _newest(repo: Path) -> int:
    return max((r["metrics"]["epoch"] for r in _registered_checkpoints(repo)), default=0)


def _kill_after_a_new_checkpoint(repo: Path, sig: signal.Signals) -> int:
    """Run `dvc repro train@vae` until Ray registered a checkpoint newer than any before, then send `sig`
    to the whole process group (dvc, the stage, Ray's driver); returns the newest registered epoch."""
    after_epoch = _newest(repo)
    proc = _start(repo)
    newest = lambda: _newest(repo)  # noqa: E731
    deadline = time.time() + 600
    while newest() <= after_epoch and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    epoch = newest()
    assert epoch > after_epoch, f"training never registered a checkpoint after epoch {after_epoch}"
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if sig == signal.SIGINT:
        assert proc.returncode != 0
    return epoch


def test_interrupted_repro_resumes_from_the_last_checkpoint(tmp_path):
    """One repo: SIGINT after a checkpoint, rerun and SIGKILL after a later one, rerun to the end."""
    repo = make_repo(tmp_path / "repo", SLOW_VAE)
    before = ray_processes()
    killed_at = []
    for sig in (signal.SIGINT, signal.SIGKILL):
        killed_at.append(_kill_after_a_new_checkpoint(repo, sig))
        assert not (repo / "models/vae/model.pt").exists(), f"no output from the run stopped by {sig.name}"
        left = leftover_ray_processes(before)
        assert not left, f"the run stopped by {sig.name} left Ray processes behind: {left}"

    t0 = time.time()
    out = run([sys.executable, "-m", "dvc", "repro", "train@vae"], repo)
    assert "Running stage 'train@vae'" in out
    info = json.loads((repo / "models/vae/run.json").read_text())
    assert info["epochs"] == 8 and info["steps"] == 8 * (4096 // (32 * 2))
    resumed = [r["epoch"] for r in info["resumed_from"]]
    # each run resumed from a checkpoint at or after the epoch registered before the previous kill (Ray may
    # register one more between the wait and the signal), never from step 0
    assert len(resumed) == 2 and resumed[0] >= killed_at[0] and resumed[1] >= killed_at[1] > resumed[0], info
    assert not leftover_ray_processes(before)
    print(f"\nSIGINT after epoch {killed_at[0]}, SIGKILL after epoch {killed_at[1]}; the runs resumed at epochs "
          f"{resumed} and finished all 8 in {time.time() - t0:.0f} s")
