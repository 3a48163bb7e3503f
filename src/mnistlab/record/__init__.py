"""The record: the run directory format (rundir) and its SQLite index (store). Files and rows, no Keras."""
