"""One local Ray per owner (ray_session): stages of one owner join the same head, and it goes away with
the owner, also after a SIGKILL; joining a `ray start` head that uses token auth works by RAY_ADDRESS."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from components.process import start_time
from components.training import ray_session
from tests.conftest import REPO, leftover_ray_processes, ray_processes

CONNECT = ("import json, os; "  # Ray is imported by connect(), as in a stage process
           "from components.training.ray_train import connect; "
           "connect(os.environ.get('TEST_ADDRESS'), num_cpus=2, root=None); import ray; "
           "print(json.dumps({'address': ray.get_runtime_context().gcs_address, "
           "'cpus': ray.cluster_resources().get('CPU'), 'pid': ray.get(ray.remote(lambda: os.getpid()).remote())}))")


def _stage_like(env: dict) -> dict:
    """A process that connects the way every stage does and reports what it joined."""
    res = subprocess.run([sys.executable, "-c", CONNECT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), **extra)
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.mark.slow
def test_stages_of_one_owner_share_one_ray_that_stops_when_the_owner_is_killed():
    before = ray_processes()
    owner = subprocess.Popen(["sleep", "600"])  # stands in for `dvc repro`
    try:
        env = _env(GENZOO_RAY_OWNER=str(owner.pid))
        first, second = _stage_like(env), _stage_like(env)
        assert first["address"] == second["address"], "the second stage joined the first one's Ray"
        assert first["pid"] != second["pid"], "each stage runs its own tasks"
        record = json.loads((ray_session.session_dir() / f"{owner.pid}.json").read_text())
        assert record["address"] == first["address"] and record["owner_pid"] == owner.pid
        token = record["token_file"]
        assert os.stat(token).st_mode & 0o077 == 0, "the session's token is readable by its user only"
        assert os.stat(ray_session.session_dir()).st_mode & 0o077 == 0
        assert start_time(record["holder_pid"]), "the holder runs while its owner lives"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    left = leftover_ray_processes(before, grace_s=60)
    assert not left, f"Ray outlived its owner: {left}"
    deadline = time.time() + 30  # it stops Ray first, then exits
    while start_time(record["holder_pid"]) is not None and time.time() < deadline:
        time.sleep(0.5)
    assert start_time(record["holder_pid"]) is None, "the holder exited"
    assert not os.path.exists(token) and not (ray_session.session_dir() / f"{owner.pid}.json").exists()


@pytest.mark.slow
def test_a_stage_without_an_owner_gets_a_ray_that_ends_with_it():
    before = ray_processes()
    env = _env()
    env.pop(ray_session.OWNER_ENV, None)
    joined = _stage_like(env)
    assert joined["cpus"] >= 2
    assert not leftover_ray_processes(before, grace_s=60), "a stage run by hand leaves no Ray behind"


def test_a_bad_owner_is_refused_with_one_line():
    env = _env(GENZOO_RAY_OWNER="not-a-pid")
    res = subprocess.run([sys.executable, "-c", CONNECT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "GENZOO_RAY_OWNER='not-a-pid': must be a process id" in res.stderr


@pytest.mark.slow
def test_joining_a_ray_start_head_with_token_auth(tmp_path):
    """`ray start --head` turns token auth on when ~/.ray/auth_token exists (any local ray.init writes one);
    a driver joining by address must then use the token too, which connect() does."""
    before = ray_processes()
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("genzoo-test-token-" + "0" * 32)
    port = 6000 + os.getpid() % 3000
    env = _env(HOME=str(home))
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(key, None)
    head = subprocess.Popen([str(REPO / ".venv/bin/ray") if (REPO / ".venv/bin/ray").exists() else "ray", "start",
                             "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            res = subprocess.run([sys.executable, "-c", CONNECT], cwd=REPO, env={**env, "TEST_ADDRESS": f"127.0.0.1:{port}"},
                                 capture_output=True, text=True, timeout=300)
            if res.returncode == 0 or time.time() > deadline or head.poll() is not None:
                break
            time.sleep(2)
        assert res.returncode == 0, res.stderr[-2000:]
        assert json.loads(res.stdout.strip().splitlines()[-1])["address"].endswith(f":{port}")
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        # `ray start` records its address for `ray.init("auto")`; `ray stop` would remove it, a kill does not
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    assert not leftover_ray_processes(before, grace_s=60)


def test_the_local_session_listens_on_loopback_only(ray_local):
    """Every listening socket of the session's processes (holder, GCS, raylet, dashboard and its agents,
    workers) is bound to 127.0.0.1: nothing answers from another machine."""
    import ipaddress

    import psutil

    record = json.loads((ray_session.session_dir() / f"{ray_session.owner_pid()}.json").read_text())
    holder = psutil.Process(record["holder_pid"])
    procs = [holder, *holder.children(recursive=True)]
    listening = [(p.pid, c.laddr) for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert len(listening) >= 3, listening  # GCS, raylet, dashboard at least
    def loopback(ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return addr.is_loopback or bool(getattr(addr, "ipv4_mapped", None) and addr.ipv4_mapped.is_loopback)

    assert not [(pid, a) for pid, a in listening if not loopback(a.ip)], listening
