"""How long a read of the run store takes while another process holds a write transaction (10 s).

    python benchmarks/store_read.py        # writes benchmarks/store-read.json

Before the store read its schema version without a lock, every open took the write lock to migrate, so a
read waited behind any writer (up to its 60 s busy timeout). The read here is what `runs list` and the lab
do: open the store, list the runs, fetch one.
"""

import json
import pathlib
import platform
import subprocess
import sys
import tempfile
import textwrap
import time

from mnistlab.core.config import Config
from mnistlab.record.store import Store

OUT = pathlib.Path(__file__).with_name("store-read.json")
HOLD_SECONDS = 10
HOLD = textwrap.dedent(
    """
    import sqlite3, sys, time
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    connection.execute("COMMIT")
    """
)


def main():
    with tempfile.TemporaryDirectory() as scratch:
        path = pathlib.Path(scratch) / "runs.db"
        with Store(path) as store:
            run_ids = [store.start_run(Config(seed=seed), "ab" * 32) for seed in range(100)]
        writer = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), str(HOLD_SECONDS)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout.readline().strip() == "holding"
        reads = []
        for run_id in run_ids[:20]:
            started = time.perf_counter()
            with Store(path) as store:
                store.runs()
                store.get(run_id)
            reads.append(time.perf_counter() - started)
        still_holding = writer.poll() is None
        writer.wait()
    result = {
        "what": f"open the store, list 100 runs and fetch one, 20 times, while another process holds a write transaction for {HOLD_SECONDS} s",
        "slowest_read_seconds": round(max(reads), 5),
        "median_read_seconds": round(sorted(reads)[len(reads) // 2], 5),
        "writer_still_held_its_lock_after_the_reads": still_holding,
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version()},
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
