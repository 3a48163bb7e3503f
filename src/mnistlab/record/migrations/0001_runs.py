"""The first schema: runs (one row per run, its config, status, metrics and where its directory is) and epochs."""

SQL = """
CREATE TABLE runs (
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
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'diverged', 'interrupted')),
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
    finished_at REAL
);
CREATE UNIQUE INDEX runs_one_done_per_key ON runs (run_key) WHERE status = 'done';
CREATE INDEX runs_by_key ON runs (run_key, status);
CREATE INDEX runs_by_preset ON runs (preset);
CREATE TABLE epochs (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    loss REAL,
    accuracy REAL,
    val_loss REAL,
    val_accuracy REAL,
    seconds REAL,
    PRIMARY KEY (run_id, epoch)
)
"""
