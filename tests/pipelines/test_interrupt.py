"""`dvc repro` killed mid-training (SIGINT, then SIGKILL of everything, then SIGKILL of dvc alone), then run
again: it resumes from the last checkpoint instead of step zero and finishes with the same step count; an
interrupt closes the MLflow run as KILLED with GenZoo's message; an orphaned stage stops by itself and a
second copy of a running stage is refused."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.tracking import Tracker, tracking_uri
from tests.conftest import leftover_ray_processes, ray_processes
from tests.pipelines.test_dvc_repro import make_repo, run

pytestmark = pytest.mark.slow
SLOW_VAE = {"pipeline": {"models": {"vae": "datasets/prepared"}}, "data": {"n_train": 4096},
            "models": {"vae": {"arch": "conv", "conv_channels": 32, "latent_dim": 8, "epochs": 12, "batch_size": 32}}}


def _registered_checkpoints(repo: Path) -> list:
    """Checkpoints Ray Train has registered (it writes the directory about a second before it lists it
    in its snapshot; only listed checkpoints survive a kill of the controller)."""
    for snap in (repo / ".genzoo/ray").glob("vae-*/checkpoint_manager_snapshot.json"):
        try:
            return json.loads(snap.read_text()).get("checkpoint_results", [])
        except ValueError:  # being rewritten
            return []
    return []


def _start(repo: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(repo))
    env.pop("VIRTUAL_ENV", None)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "dvc", "repro", "train@vae"], cwd=repo, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _train_runs(tracker) -> list:
    """The project's train runs, newest first."""
    return tracker.client.search_runs([tracker.experiment_id], "tags.`genzoo.stage` = 'train'",
                                      order_by=["attributes.start_time DESC"])


def _stage_pid(repo: Path) -> int | None:
    """The pid in train@vae's lock file once the stage holds it."""
    try:
        return int((repo / ".genzoo/locks/train@vae.lock").read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _newest(repo: Path) -> int:
    return max((r["metrics"]["epoch"] for r in _registered_checkpoints(repo)), default=0)


def _kill_after_a_new_checkpoint(repo: Path, sig: signal.Signals, log: Path) -> int:
    """Run `dvc repro train@vae` until Ray registered a checkpoint newer than any before, then send `sig`
    to the whole process group (dvc, the stage, Ray's driver); returns the newest registered epoch."""
    after_epoch = _newest(repo)
    proc = _start(repo, log)
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
    """One repo: SIGINT after a checkpoint, rerun and SIGKILL after a later one, rerun and SIGKILL of dvc
    alone, rerun to the end."""
    repo = make_repo(tmp_path / "repo", SLOW_VAE)
    before = ray_processes()
    killed_at = []
    for sig in (signal.SIGINT, signal.SIGKILL):
        log = tmp_path / f"{sig.name}.log"
        killed_at.append(_kill_after_a_new_checkpoint(repo, sig, log))
        assert not (repo / "models/vae/model.pt").exists(), f"no output from the run stopped by {sig.name}"
        left = leftover_ray_processes(before)
        assert not left, f"the run stopped by {sig.name} left Ray processes behind: {left}"
        if sig == signal.SIGINT:  # GenZoo's message, and the MLflow run closed as KILLED, not left RUNNING
            assert "interrupted; rerun to resume from the last checkpoint" in log.read_text(errors="replace")
            tracker = Tracker(tracking_uri(None, repo), "genzoo", root=repo)
            runs = tracker.client.search_runs([tracker.experiment_id], "tags.`genzoo.stage` = 'train'")
            assert [r.info.status for r in runs] == ["KILLED"], [(r.info.status, r.data.tags.get("genzoo.failure")) for r in runs]

    # SIGKILL of dvc alone: its stage must not train on as an orphan beside the rerun. While it runs, a second
    # train@vae in the same project is refused (the stage lock); once dvc is gone the stage stops by itself.
    log, previous = tmp_path / "orphan.log", _stage_pid(repo)
    proc = _start(repo, log)
    deadline = time.time() + 300
    while not (_stage_pid(repo) != previous and _alive(_stage_pid(repo))) and time.time() < deadline:
        time.sleep(0.2)
    stage_pid = _stage_pid(repo)
    assert stage_pid != previous and _alive(stage_pid), log.read_text(errors="replace")[-2000:]
    while len(_train_runs(tracker)) < 3 and time.time() < deadline:  # into training: its MLflow run is open
        time.sleep(0.2)
    env = dict(os.environ, PYTHONPATH=str(repo), GENZOO_LOCK_WAIT_S="1")
    second = subprocess.run([sys.executable, "-m", "pipelines.train", "--model", "vae"], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 1 and second.stderr.strip() == (
        f"error: train@vae is already running in this project (pid {stage_pid}); wait for it or stop it; nothing was started")
    os.kill(proc.pid, signal.SIGKILL)  # dvc only, not its process group
    proc.wait()
    deadline = time.time() + 90
    while _alive(stage_pid) and time.time() < deadline:
        time.sleep(0.5)
    assert not _alive(stage_pid), "the orphaned stage stopped once its dvc was gone"
    assert "is gone; stopping" in log.read_text(errors="replace")
    assert not leftover_ray_processes(before)
    orphan_run = _train_runs(tracker)[0].info.run_id  # KILLED if the interrupt reached it in time, else closed below

    t0 = time.time()
    out = run([sys.executable, "-m", "dvc", "repro", "train@vae"], repo)
    assert "Running stage 'train@vae'" in out
    info = json.loads((repo / "models/vae/run.json").read_text())
    assert info["epochs"] == 12 and info["steps"] == 12 * (4096 // (32 * 2))
    resumed = [r["epoch"] for r in info["resumed_from"]]
    # each run resumed from a checkpoint at or after the epoch registered before the previous kill (Ray may
    # register one more between the wait and the signal), never from step 0
    assert len(resumed) >= 2 and resumed[0] >= killed_at[0] and resumed[1] >= killed_at[1] > resumed[0], info
    assert not leftover_ray_processes(before)
    closed = tracker.get_run(orphan_run)
    assert closed.info.status in ("KILLED", "FAILED"), "the orphan's run is never left RUNNING after the next run"
    assert [r.info.status for r in _train_runs(tracker)].count("RUNNING") == 0
    print(f"\nSIGINT after epoch {killed_at[0]}, SIGKILL after epoch {killed_at[1]}; the runs resumed at epochs "
          f"{resumed} and finished all 12 in {time.time() - t0:.0f} s")
