"""What every stage script shares: arguments, params loading, `--dry-run`, one-line errors, and the
stage's timing: wall time from process start and the part of it that was the stage's own work (training
epochs, evaluation, ...); the rest is fixed cost (interpreter and imports, Ray, MLflow). It is printed
and written to .genzoo/timings/<stage>.json, which bench/harness.py --main-job turns into a table."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from components.config import Params, load_config
from components.errors import GenZooError


def parser(description: str, model: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    if model:
        p.add_argument("--model", required=True, help="model name, a key of models in params.yaml")
    return p


def load(args: argparse.Namespace) -> Params:
    models = [args.model] if getattr(args, "model", None) else None
    params = load_config(args.params, models=models)
    if models and args.model not in params.pipeline.models:
        print(f"note: {args.model} is not in pipeline.models; training it anyway", file=sys.stderr)
    return params


def dry_run(args: argparse.Namespace, resolved: dict) -> bool:
    if args.dry_run:
        print(json.dumps(resolved, indent=2, default=str))
    return args.dry_run


def write_json(path: Path, obj) -> None:
    """Write `obj` as indented JSON, atomically: a reader (or dvc) sees the old file or the new one."""
    from components.io import write_json as _write

    _write(path, obj)


_work = {"s": 0.0}


def add_work(seconds: float) -> None:
    """Count `seconds` as the stage's own work (e.g. the sum of its training epochs)."""
    _work["s"] += seconds


@contextmanager
def work() -> Iterator[None]:
    """Count the block's wall time as the stage's own work."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        add_work(time.perf_counter() - t0)


_parts: list[dict] = []


@contextmanager
def part(label: str) -> Iterator[None]:
    """Time the block as a part of the stage, with its own row (e.g. `evaluate@vae` inside `evaluate`): the
    stage's row keeps the rest (start-up), so per-model costs stay visible in bench/harness.py's table."""
    t0, work0 = time.perf_counter(), _work["s"]
    try:
        yield
    finally:
        wall = time.perf_counter() - t0
        _parts.append({"stage": label, "wall_s": wall, "work_s": min(_work["s"] - work0, wall), "finished": time.time()})


def _process_start() -> float:
    """When this process started (epoch seconds), so the wall time includes interpreter start and imports."""
    from components.process import start_time

    return start_time(os.getpid()) or _IMPORTED


_IMPORTED = time.time()


def _record_timing(ok: bool) -> None:
    name = _stage_name()
    wall = time.time() - _process_start() - sum(p["wall_s"] for p in _parts)
    work_s = min(_work["s"] - sum(p["work_s"] for p in _parts), wall)
    rows = [*(dict(p, ok=ok, fixed_s=p["wall_s"] - p["work_s"], part_of=name) for p in _parts),
            {"stage": name, "ok": ok, "wall_s": wall, "work_s": work_s, "fixed_s": wall - work_s, "finished": time.time()}]
    for row in rows:
        rest = " (the rest: start-up)" if _parts and row["stage"] == name else ""
        print(f"[timing] {row['stage']}: {row['wall_s']:.1f}s wall, {row['work_s']:.1f}s work, {row['fixed_s']:.1f}s "
              f"fixed cost ({row['fixed_s'] / max(row['wall_s'], 1e-9):.0%}){rest}", file=_err(), flush=True)
    try:
        for row in rows:
            out = Path(".genzoo/timings") / f"{row['stage']}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(row) + "\n")
    except OSError:  # a read-only checkout: the printed line is enough
        pass


def _stage_name() -> str:
    args = sys.argv[1:]
    return Path(sys.argv[0]).stem + (f"@{args[args.index('--model') + 1]}" if "--model" in args[:-1] else "")


_held: list = []  # the lock file stays open (and locked) for the life of the process


def _lock(name: str) -> None:
    """One process per stage and project: a second `train@vae` (e.g. a rerun while an orphaned one still
    runs) waits up to GENZOO_LOCK_WAIT_S (60 s) for the first to stop, then refuses. The kernel releases
    the lock when its process exits, SIGKILL included."""
    import fcntl

    path = Path(".genzoo/locks") / f"{name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")  # noqa: SIM115 - held until exit
    except OSError:  # a read-only checkout cannot run stages anyway; let the stage say what fails
        return
    deadline = time.time() + float(os.environ.get("GENZOO_LOCK_WAIT_S", "60"))
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            if time.time() >= deadline:
                f.close()
                raise GenZooError(f"{name} is already running in this project (pid {holder}); wait for it or stop "
                                  "it; nothing was started") from None
            time.sleep(0.5)
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    _held.append(f)


def _follow_owner() -> None:
    """Stop (as if by Ctrl-C) when the `dvc` that started this stage dies, even by SIGKILL: an orphaned
    stage would go on training beside the rerun. A stage run by hand has no such owner."""
    import signal
    import threading

    from components.process import start_time
    from components.training import ray_session

    owner = ray_session.owner_pid()
    start = start_time(owner)
    if owner == os.getpid() or start is None:
        return

    def watch() -> None:
        while start_time(owner) == start:
            time.sleep(0.5)
        print(f"{_stage_name()}: the dvc process that started it ({owner}) is gone; stopping", file=_err(), flush=True)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)  # the interrupt ends the MLflow run and Ray cleanly; if that hangs, leave anyway
        os._exit(130)

    threading.Thread(target=watch, name="genzoo-owner-watch", daemon=True).start()


_log: dict = {}  # {"terminal": the terminal's stderr, "path": the log file, "start": its size before} once redirected


def _err():
    """Where the stage's own lines go: the terminal, also while Ray's messages go to the log file."""
    return _log.get("terminal", sys.stderr)


def ray_messages_to_log(name: str) -> Path | None:
    """From here on, this process's stderr (where Ray prints its workers' tracebacks, its warnings and those
    of MLflow) goes to .genzoo/logs/<name>.log (appended); the terminal keeps stdout (progress, the workers'
    epoch lines) and the stage's own lines (its error, naming that file, and its timing). Call it after the
    params are checked, before Ray starts."""
    path = Path(".genzoo/logs") / f"{name}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:  # a read-only checkout: keep everything on the terminal
        return None
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    os.write(fd, f"\n=== {name} pid {os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
    os.dup2(fd, 2)
    os.close(fd)
    _log.update(terminal=terminal, path=path, start=path.stat().st_size)
    return path


def _where_logged() -> str:
    """' (Ray's messages and tracebacks: <log>)' when this run wrote any there, else ''."""
    path = _log.get("path")
    if path is None:
        return ""
    sys.stderr.flush()
    try:
        grew = path.stat().st_size > _log["start"]
    except OSError:
        return ""
    return f" (Ray's messages and tracebacks: {path})" if grew else ""


def run(main: Callable[[], None], stage: bool = True) -> None:
    """Call a stage's main(); bad input and known failures become one line on stderr and a non-zero exit.
    A stage (not the genzoo CLI) outside --dry-run holds its lock and follows the `dvc` that started it."""
    try:
        if stage and not {"--dry-run", "-h", "--help"} & set(sys.argv):
            _lock(_stage_name())
            _follow_owner()
        main()
    except GenZooError as err:
        print(f"error: {err}{_where_logged()}", file=_err())
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted; rerun to resume from the last checkpoint", file=_err())
        sys.exit(130)
    except Exception as err:
        if "path" not in _log:
            raise
        import traceback

        traceback.print_exc()  # into the log file
        print(f"error: {type(err).__name__}: {err}{_where_logged()}", file=_err())
        sys.exit(1)
    if stage and "--dry-run" not in sys.argv:
        _record_timing(ok=True)
        _exit_now()


def _exit_now() -> None:
    """Leave without the interpreter's teardown: finalizing torch, MLflow's SQLAlchemy engine and Ray's
    driver took 1.5-3 s of every train and evaluate stage, and dvc waits for it. Everything a stage writes
    is closed and renamed into place by then, MLflow runs are ended, and a driver's exit is how Ray ends
    the stage's job in any case (its actors are gone with it, as after a SIGKILL)."""
    for stream in (sys.stdout, sys.stderr, _err()):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
