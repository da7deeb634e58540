"""One local Ray for all the stages of a `dvc repro` (part of the Ray adapter; see ray_train.connect).

Starting a local Ray costs ~9 s on 2 cores; joining a running one ~0.1 s. So the first stage that needs
Ray starts a *holder*: a small detached process whose `ray.init` starts a head bound for this machine
only, with token authentication on a token of its own. Later stages of the same owner join it. The owner
is the process whose lifetime the session follows: `GENZOO_RAY_OWNER` (a pid) if set, else the nearest
`dvc` ancestor (`dvc repro`, `dvc exp run`), else the stage process itself (a stage run by hand gets a
session of its own that ends with it).

Nothing is left behind: the holder polls its owner and shuts Ray down once the owner has exited (also
after a SIGKILL of `dvc`), and Ray's own processes share the holder's fate (Ray kills them when the
driver that started them dies, SIGKILL included).

Records live in a per-user directory (mode 0700) under the system temp dir:
`<owner pid>.json` (address, holder pid, owner start time), `<owner pid>-<random>.token` (0600), `.log`, `.lock`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from components.errors import TrainingError
from components.io import write_text
from components.process import is_dvc, parent, start_time

OWNER_ENV = "GENZOO_RAY_OWNER"
# Ray's node address (GCS, raylet, workers, dashboard agent, gloo rendezvous) is the loopback address, as Ray
# does on macOS: a local session answers nobody but this machine.
LOOPBACK_KEY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = {LOOPBACK_KEY: "0"}
START_TIMEOUT_S = 180.0  # a local head with its dashboard on a loaded 2-core box takes 10-30 s
POLL_S = 0.5


def session_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"genzoo-ray-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    st = d.lstat()
    if st.st_uid != os.getuid() or not d.is_dir() or d.is_symlink():
        raise TrainingError(f"{d}: not a directory of this user; remove it (it holds GenZoo's Ray session tokens)")
    if st.st_mode & 0o077:
        d.chmod(0o700)
    return d


def owner_pid() -> int:
    """The process whose lifetime the session follows (see the module docstring)."""
    if os.environ.get(OWNER_ENV, "").strip():
        try:
            pid = int(os.environ[OWNER_ENV])
        except ValueError:
            raise TrainingError(f"{OWNER_ENV}={os.environ[OWNER_ENV]!r}: must be a process id") from None
        if start_time(pid) is None:
            raise TrainingError(f"{OWNER_ENV}={pid}: no such process")
        return pid
    pid = os.getppid()
    while pid > 1:
        if is_dvc(pid):
            return pid
        pid = parent(pid)
    return os.getpid()


def _alive(record: dict) -> bool:
    return (start_time(record["holder_pid"]) == record["holder_start"]
            and start_time(record["owner_pid"]) == record["owner_start"])


def auth_env(token_file: Path) -> dict[str, str]:
    """What a process needs in its environment to talk to the session's Ray."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}


def use_auth(values: dict[str, str]) -> None:
    """Point this process's Ray at the session's token. Ray caches its auth settings when it is imported,
    so they are reloaded here; they stay for the process's lifetime (Ray's gRPC threads may reload the
    token while connected), and the token file lives as long as the session."""
    from ray._raylet import AuthenticationTokenLoader, Config

    os.environ.update(values)
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@contextmanager
def loopback():
    """Join a local session from this process: Ray resolves 127.0.0.1 to the machine's address unless
    told (as its macOS default does) that the node address is the loopback one. Ray reads the setting when
    it is imported, so the constant is set too; both are restored after, since the node address is fixed
    once connected, and a later Ray of this process may be a real cluster's."""
    import ray._private.ray_constants as rc

    old_env, old_const = os.environ.get(LOOPBACK_KEY), rc.ENABLE_RAY_CLUSTER
    os.environ.update(LOOPBACK)
    rc.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        rc.ENABLE_RAY_CLUSTER = old_const
        if old_env is None:
            os.environ.pop(LOOPBACK_KEY, None)
        else:
            os.environ[LOOPBACK_KEY] = old_env


def token_auth_if_available() -> None:
    """Before joining a cluster at an address from a fresh process: if RAY_AUTH_MODE is unset and a token
    is at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), use token auth. A `ray start
    --head` turns token auth on by itself when ~/.ray/auth_token exists (any earlier local `ray.init` writes
    one), but a joining driver does not, and fails with InvalidAuthToken. Ray reads the mode when it is
    imported; a process that imported Ray already keeps the settings it has."""
    if "RAY_AUTH_MODE" in os.environ or "ray" in sys.modules:
        return
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def ensure(num_cpus: int) -> tuple[str, dict[str, str]]:
    """The address of the owner's local Ray, started if needed, and the auth settings to join it."""
    owner = owner_pid()
    d = session_dir()
    record_file = d / f"{owner}.json"
    with open(d / f"{owner}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two stages of one owner never start two heads
        if record_file.is_file():
            record = json.loads(record_file.read_text())
            if _alive(record) and record["num_cpus"] >= num_cpus:
                return record["address"], auth_env(Path(record["token_file"]))
            stop(record)
        return _start(owner, d, num_cpus)


def _start(owner: int, d: Path, num_cpus: int) -> tuple[str, dict[str, str]]:
    record_file, log_file = d / f"{owner}.json", d / f"{owner}.log"
    token_file = d / f"{owner}-{secrets.token_hex(4)}.token"  # one per holder: a stopping one deletes only its own
    record_file.unlink(missing_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    env = {**os.environ, **auth_env(token_file), **LOOPBACK}
    with open(log_file, "w") as log:
        holder = subprocess.Popen(
            [sys.executable, "-m", "components.training.ray_session", "--owner", str(owner),
             "--owner-start", str(start_time(owner)), "--num-cpus", str(num_cpus), "--record", str(record_file)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not record_file.is_file():
        if holder.poll() is not None or time.monotonic() > deadline:
            holder.kill()
            token_file.unlink(missing_ok=True)
            tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise TrainingError(f"could not start a local Ray (log: {log_file}): {tail[0]}")
        time.sleep(0.1)
    record = json.loads(record_file.read_text())
    print(f"[ray] started a local Ray at {record['address']} for this run (pid {owner}); "
          f"it stops when that process exits", flush=True)
    return record["address"], auth_env(token_file)


def stop(record: dict) -> None:
    """Ask a session's holder to shut its Ray down (it also does so by itself once its owner exits)."""
    if start_time(record["holder_pid"]) == record["holder_start"]:
        try:
            os.kill(record["holder_pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass


def _hold(owner: int, owner_start: float, num_cpus: int, record_file: Path) -> None:
    """The holder: start Ray, publish its address, wait for the owner to exit, shut Ray down."""
    import ray

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    # The dashboard serves the State API that Ray Train's PlacementGroupCleaner polls to free the CPUs
    # of a controller that died abruptly (a finished or ASHA-stopped Tune trial); 127.0.0.1 only.
    # address="local": always a new instance, never a `ray start` cluster that happens to run on this machine
    ctx = ray.init(address="local", num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1",
                   log_to_driver=False, configure_logging=False)
    me = os.getpid()
    record = {"address": ctx.address_info["gcs_address"], "num_cpus": num_cpus, "holder_pid": me,
              "holder_start": start_time(me), "owner_pid": owner, "owner_start": owner_start,
              "token_file": os.environ["RAY_AUTH_TOKEN_PATH"], "dashboard": ctx.dashboard_url}
    write_text(record_file, json.dumps(record))
    print(f"holding Ray at {record['address']} for pid {owner}", flush=True)
    try:
        while not stopping and start_time(owner) == owner_start:
            time.sleep(POLL_S)
    finally:
        if record_file.is_file() and json.loads(record_file.read_text()).get("holder_pid") == me:
            record_file.unlink(missing_ok=True)
        ray.shutdown()
        Path(record["token_file"]).unlink(missing_ok=True)
        for ext in ("log", "lock"):  # a clean stop leaves nothing; a failed start keeps its log
            record_file.with_suffix(f".{ext}").unlink(missing_ok=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="GenZoo's Ray session holder (started by ray_train.connect)")
    ap.add_argument("--owner", type=int, required=True)
    ap.add_argument("--owner-start", type=float, required=True)
    ap.add_argument("--num-cpus", type=int, required=True)
    ap.add_argument("--record", type=Path, required=True)
    a = ap.parse_args()
    _hold(a.owner, a.owner_start, a.num_cpus, a.record)
