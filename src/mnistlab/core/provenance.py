"""Where a measurement comes from: date, commit and machine, recorded beside every published figure."""

import datetime
import os
import platform
import subprocess


def commit(repo):
    """The checkout's commit, marked +uncommitted when the working tree differs from it."""
    head = (
        subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=repo).stdout.strip()
        or "unknown"
    )
    if subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=repo
    ).stdout.strip():
        head += "+uncommitted"
    return head


def machine():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def stamp(repo):
    """{"date", "commit", "machine"} for a results file."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(repo),
        "machine": machine(),
    }
