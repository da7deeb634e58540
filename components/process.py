"""Facts about processes on this machine, through psutil (Linux, macOS, Windows): when one started, its parent,
whether it is `dvc`. (pid, start time) names a process uniquely where a pid alone may be reused."""

from __future__ import annotations

import os

import psutil


def start_time(pid: int) -> float | None:
    """When process `pid` started (epoch seconds, stable across calls), or None if it has exited (or is a zombie)."""
    try:
        p = psutil.Process(pid)
        return None if p.status() == psutil.STATUS_ZOMBIE else p.create_time()
    except (psutil.Error, ValueError):
        return None


def parent(pid: int) -> int:
    """The parent's pid (0 when unknown)."""
    try:
        return psutil.Process(pid).ppid()
    except (psutil.Error, ValueError):
        return 0


def is_dvc(pid: int) -> bool:
    """Whether `pid` runs dvc (`dvc ...` or `python -m dvc ...`)."""
    try:
        argv = psutil.Process(pid).cmdline()
    except (psutil.Error, ValueError):
        return False
    return "dvc" in [os.path.basename(a) for a in argv[:2]] or argv[1:3] == ["-m", "dvc"]
