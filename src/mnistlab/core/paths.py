"""Where mnistlab keeps things, each with its environment override.

    runs root   $MNISTLAB_RUNS, else ./runs        run directories
    store       $MNISTLAB_STORE, else <runs>/runs.db   the index of runs
    data cache  $MNISTLAB_DATA, else the user cache   downloaded datasets
    compiled    <data cache>/jax-compiled               JAX's compiled programs, kept between runs
    tables      <store's directory>/tables          reproduced tables

Functions, not constants: the environment is read when asked, so tests and
callers may change it after import.
"""

import os
import pathlib


def runs_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MNISTLAB_RUNS", "runs"))


def store_path(path=None) -> pathlib.Path:
    """The given path, else $MNISTLAB_STORE, else runs.db beside the run directories."""
    if path:
        return pathlib.Path(path)
    if os.environ.get("MNISTLAB_STORE"):
        return pathlib.Path(os.environ["MNISTLAB_STORE"])
    return runs_root() / "runs.db"


def data_cache() -> pathlib.Path:
    """Where downloads live: $MNISTLAB_DATA, else the per-user cache directory."""
    if os.environ.get("MNISTLAB_DATA"):
        return pathlib.Path(os.environ["MNISTLAB_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "mnistlab"


def compiled_cache() -> pathlib.Path:
    """Where JAX keeps the programs it compiled, for the next process that runs the same network."""
    return data_cache() / "jax-compiled"


def tables_dir(store=None) -> pathlib.Path:
    return store_path(store).parent / "tables"
