"""The run store's schema as numbered migrations: `NNNN_what.py` takes the schema from version NNNN - 1 to NNNN.

Each file holds its SQL (`SQL`, statements separated by semicolons) and says why in its docstring. The store
applies, in number order, every migration above the version a file records (meta.schema_version), in one write
transaction (`mnistlab.record.store.connection.migrate`). A change of schema is a new file with the next number,
never an edit of an old one: stores in the field have been through the old ones already.
"""

import dataclasses
import importlib
import pkgutil
import re

NAME = re.compile(r"(\d{4})_(\w+)")


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        return [statement.strip() for statement in self.sql.split(";") if statement.strip()]


def _load():
    found = []
    for module in pkgutil.iter_modules(__path__):
        match = NAME.fullmatch(module.name)
        if match:
            sql = importlib.import_module(f"{__name__}.{module.name}").SQL
            found.append(Migration(int(match[1]), match[2], sql))
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
