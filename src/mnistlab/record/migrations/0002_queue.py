"""The lab's queue: 'queued' as a status, and the launch column (how a queued run is to be run).

SQLite cannot change a CHECK constraint in place, so the runs table is rebuilt (ids and the id sequence kept);
epochs are copied aside first, since dropping the old runs table would cascade to them.

The new table is the old one's own definition, as SQLite stored it, with the two changes made: SQLite's
documented way to make any other schema change (create the new table, copy, drop, rename). This file states only
what changes; 0001 stays the one place that spells the tables out.
"""


def migrate(db):
    runs = _changed(
        _stored(db, "runs"),
        ("CREATE TABLE runs (", "CREATE TABLE runs_v2 ("),
        ("CHECK (status IN (", "CHECK (status IN ('queued', "),
    )
    runs = runs.rstrip().removesuffix(")").rstrip() + ",\n    launch_json TEXT\n)"
    epochs = _stored(db, "epochs")
    indexes = [row[0] for row in db.execute(_INDEXES_OF_RUNS)]
    db.execute(runs)
    db.execute("INSERT INTO runs_v2 SELECT *, NULL FROM runs")
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'runs_v2'")
    db.execute("UPDATE sqlite_sequence SET name = 'runs_v2' WHERE name = 'runs'")
    db.execute("CREATE TABLE epochs_copy AS SELECT * FROM epochs")
    db.execute("DROP TABLE epochs")
    db.execute("DROP TABLE runs")
    db.execute("ALTER TABLE runs_v2 RENAME TO runs")
    db.execute(epochs)
    db.execute("INSERT INTO epochs SELECT * FROM epochs_copy")
    db.execute("DROP TABLE epochs_copy")
    for index in indexes:
        db.execute(index)
    db.execute("CREATE INDEX runs_by_status ON runs (status)")


_INDEXES_OF_RUNS = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runs' AND sql IS NOT NULL"


def _stored(db, table):
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    if row is None:
        raise RuntimeError(f"migration 2: the store has no {table} table; it is not a schema-1 store")
    return row[0]


def _changed(sql, *replacements):
    for old, new in replacements:
        if old not in sql:
            raise RuntimeError(f"migration 2: the runs table's definition has no {old!r}; it is not a schema-1 store")
        sql = sql.replace(old, new, 1)
    return sql
