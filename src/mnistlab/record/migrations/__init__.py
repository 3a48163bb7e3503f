"""The run store's schema as numbered migrations: `NNNN_what.py` takes the schema from version NNNN - 1 to NNNN.

Each file holds its SQL (`SQL`, statements separated by semicolons), or a function `migrate(db)` where the change
is made from what the store holds, and says why in its docstring. The store
applies, in number order, every migration above the version a file records (meta.schema_version), in one write
transaction (`mnistlab.record.store.connection.migrate`). A change of schema is a new file with the next number,
never an edit of an old one: stores in the field have been through the old ones already.
"""

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Callable

NAME = re.compile(r"(\d{4})_(\w+)")


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str | None
    function: Callable | None

    def apply(self, db):
        """Make this migration's change on the connection DB, inside the caller's transaction."""
        if self.function is not None:
            self.function(db)
            return
        for statement in self.sql.split(";"):
            if statement.strip():
                db.execute(statement)


def _load():
    found = []
    for module in pkgutil.iter_modules(__path__):
        match = NAME.fullmatch(module.name)
        if match:
            source = importlib.import_module(f"{__name__}.{module.name}")
            found.append(
                Migration(int(match[1]), match[2], getattr(source, "SQL", None), getattr(source, "migrate", None))
            )
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"the store's migrations must be numbered 1, 2, 3... without a gap; found {versions}")
    return tuple(found)


MIGRATIONS = _load()
SCHEMA_VERSION = MIGRATIONS[-1].version


def after(version: int) -> list[Migration]:
    """The migrations that bring a store at VERSION up to SCHEMA_VERSION, in order."""
    return [migration for migration in MIGRATIONS if migration.version > version]


def get(version: int) -> Migration:
    return MIGRATIONS[version - 1]
