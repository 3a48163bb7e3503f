"""The lab's queue: 'queued' as a status, and the launch column (how a queued run is to be run).

SQLite cannot change a CHECK constraint in place, so the runs table is rebuilt (ids and the id sequence kept);
epochs are copied aside first, since dropping the old runs table would cascade to them.
"""

SQL = """
CREATE TABLE runs_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    preset TEXT,
    group_name TEXT,
    model TEXT NOT NULL,
    config_json TEXT NOT NULL,
    dataset TEXT NOT NULL,
    dataset_hash TEXT NOT NULL,
    backend TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'diverged', 'interrupted')),
    attempt INTEGER NOT NULL DEFAULT 1,
    error TEXT,
    host TEXT,
    pid INTEGER,
    machine_json TEXT,
    versions_json TEXT,
    metrics_json TEXT,
    test_accuracy REAL,
    test_loss REAL,
    train_accuracy REAL,
    val_accuracy REAL,
    mean_epoch_seconds REAL,
    seconds REAL,
    run_dir TEXT,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    launch_json TEXT
);
INSERT INTO runs_v2 SELECT *, NULL FROM runs;
DELETE FROM sqlite_sequence WHERE name = 'runs_v2';
UPDATE sqlite_sequence SET name = 'runs_v2' WHERE name = 'runs';
CREATE TABLE epochs_copy AS SELECT * FROM epochs;
DROP TABLE epochs;
DROP TABLE runs;
ALTER TABLE runs_v2 RENAME TO runs;
CREATE TABLE epochs (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    loss REAL,
    accuracy REAL,
    val_loss REAL,
    val_accuracy REAL,
    seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
INSERT INTO epochs SELECT * FROM epochs_copy;
DROP TABLE epochs_copy;
CREATE UNIQUE INDEX runs_one_done_per_key ON runs (run_key) WHERE status = 'done';
CREATE INDEX runs_by_key ON runs (run_key, status);
CREATE INDEX runs_by_preset ON runs (preset);
CREATE INDEX runs_by_status ON runs (status)
"""
