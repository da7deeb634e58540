"""Fault injection for tests: the one documented hook through which a test makes a training worker fail.

`TrainJob.fault` is None in every real run (no stage, param or CLI flag sets it); tests pass it to
`run_training(..., fault=...)` or a TrainJob:

    {"rank": r, "epoch": e, "marker": path}
        rank r dies without cleanup (os._exit) after reporting epoch e, once: the marker file it writes keeps
        the restarted group from dying again, so the test sees a real restart from the last checkpoint.
    {"rank": r, "epoch": e, "marker": path, "errno": "ENOSPC"}
        rank r raises OSError(ENOSPC) at epoch e, on every attempt, and appends a line to the marker: a failure
        that no retry can fix (ray_train must not retry it).

The Ray Train adapter calls `before_report` and `after_report` at every epoch end on every rank; both return at
once when the job has no fault.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path


def _due(fault: dict | None, rank: int, epoch: int) -> bool:
    return bool(fault) and rank == fault["rank"] and epoch + 1 == fault["epoch"]


def before_report(fault: dict | None, rank: int, epoch: int, run_dir: Path) -> None:
    """The errno fault: raise the OSError (after epoch `epoch`'s predecessor is registered, so the resume point
    does not depend on timing)."""
    if not (_due(fault, rank, epoch) and fault.get("errno")):
        return
    if epoch > 0:
        await_registered_checkpoint(run_dir, epoch)
    with open(fault["marker"], "a") as f:
        f.write(f"{fault['errno']} at epoch {epoch + 1}\n")
    code = getattr(errno, fault["errno"])
    raise OSError(code, os.strerror(code), str(run_dir))


def after_report(fault: dict | None, rank: int, epoch: int, run_dir: Path) -> None:
    """The crash fault: once the epoch's checkpoint is registered, the process dies without cleanup."""
    if not _due(fault, rank, epoch) or fault.get("errno") or Path(fault["marker"]).exists():
        return
    await_registered_checkpoint(run_dir, epoch + 1)
    Path(fault["marker"]).write_text(f"killed after epoch {epoch + 1}\n")
    os._exit(1)


def await_registered_checkpoint(run_dir: Path, epoch: int, timeout_s: float = 120.0) -> None:
    """Wait until Ray Train lists the epoch's checkpoint in its snapshot.

    The controller registers a report only when it next polls the workers; a worker that dies before that
    loses the report, so without this wait the resume point would depend on timing (epoch N, N-1 or 0).
    """
    snapshot = run_dir / "checkpoint_manager_snapshot.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            results = json.loads(snapshot.read_text()).get("checkpoint_results", [])
            if any(r.get("metrics", {}).get("epoch") == epoch for r in results):
                return
        except (OSError, ValueError):  # not written yet, or being rewritten
            pass
        time.sleep(0.2)
