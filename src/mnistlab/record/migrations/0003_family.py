"""The runs table's `model` column is the model's family (mlp, cnn, rnn), as the config's key is: it is called `family`.

A rename in place (SQLite 3.25 and later): rows, ids, indexes and epochs stay as they are.
"""

SQL = """
ALTER TABLE runs RENAME COLUMN model TO family
"""
