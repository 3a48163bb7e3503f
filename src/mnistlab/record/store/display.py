"""A store row in words: its settings in one line (`runs list`), a whole run as lines (`runs show`)."""

import datetime
import json
import time

from mnistlab.core import presets
from mnistlab.core.config import Config
from mnistlab.core.events import RunStatus


def describe_run(row):
    """A store row's settings in one short line: the preset and what differs from it."""
    return presets.describe(Config.from_dict(json.loads(row["config_json"])), row["preset"])


def run_seconds(row, now=None):
    """How long a run has taken, in seconds: its recorded time from start to result where it finished; for one
    stopped or failed before its result, from its start to its end; for one running, so far; None when queued."""
    if row.get("seconds") is not None:
        return row["seconds"]
    if row.get("started_at") is None or row.get("status") == RunStatus.QUEUED:  # a queued row's start is its queueing
        return None
    end = row.get("finished_at") or (time.time() if now is None else now)
    return max(0.0, end - row["started_at"])


def seconds_in_words(row):
    seconds = run_seconds(row)
    return "-" if seconds is None else f"{seconds:.1f}"


def _when(timestamp):
    return "-" if timestamp is None else datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def format_run(run):
    """A run from `Store.show` as readable lines."""
    config = Config.from_dict(run["config"])
    lines = [
        f"run {run['id']}: {run['status']}" + (f" ({run['error']})" if run.get("error") else ""),
        f"  setup       {presets.describe(config, run['preset'])}",
        f"  model       {config.describe()}",
        f"  data        {run['dataset']} (content {run['dataset_hash'][:12]}), backend {run['backend']}, seed {run['seed']}",
        f"  accuracy    test {_percent(run['test_accuracy'])}, validation {_percent(run['val_accuracy'])}, train (last epoch) {_percent(run['train_accuracy'])}",
        f"  time        started {_when(run['started_at'])}, finished {_when(run['finished_at'])}, {seconds_in_words(run)} s",
        f"  directory   {run['run_dir']}",
        f"  group       {run['group_name'] or '-'}; config hash {run['config_hash']}",
    ]
    if run["epochs"]:
        lines.append("  epoch   loss    acc     val_loss val_acc  seconds")
        for row in run["epochs"]:
            values = [row[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")]
            lines.append(
                f"  {row['epoch']:>5} " + " ".join("    n/a " if value is None else f"{value:8.4f}" for value in values)
            )
    return "\n".join(lines)
