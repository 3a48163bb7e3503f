"""Named configs: the chapter's three listings and every row of its three result tables.

Presets are plain data built from the book's facts (`book/chapter1.json`, a
copy of the transcription in shared/book): nothing here retypes a number.

How Table 1.3.2's "Layers" column is read
-----------------------------------------
The table prints three widths per row (e.g. 256-256-256) while Listing 1.3.2,
which is the table's Adam / Dropout(0.45) / 98.5% row, has two hidden
Dense(256) layers and a Dense(10) output. The presets follow the *listing*
reading: the first two widths are the two hidden layers, and the third
printed width is not used. That is the only reading under which the row that
*is* Listing 1.3.2 reproduces the listing's 269,322 parameters, and the book's
code for the table is that listing with its knobs changed.

The other reading, three hidden layers of the printed widths, is runnable by
appending `@three-hidden` to any Table 1.3.2 preset name, e.g.
`mnistlab train table-1.3.2-row9@three-hidden` (also in `reproduce
--mlp-reading three-hidden`).
"""

import dataclasses
import difflib
import functools
import json
import pathlib

from mnistlab.core.config import RUN_KEYS, Config
from mnistlab.core.errors import ConfigError

BOOK_PATH = pathlib.Path(__file__).parent / "book" / "chapter1.json"
FACTS_PATH = pathlib.Path(__file__).parent / "book" / "facts.json"
LISTING_READING = "listing"
THREE_HIDDEN_READING = "three-hidden"
MLP_READINGS = (LISTING_READING, THREE_HIDDEN_READING)
TABLES = ("table-1.3.2", "table-1.4.1", "table-1.5.1")


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: dict
    summary: str = ""  # the settings in a few words, e.g. "256-256-256, dropout(0.45), adam" (tables print it)
    book_train_accuracy: float | None = None
    book_test_accuracy: float | None = None
    table: str | None = None
    row: int | None = None
    settings: dict = dataclasses.field(default_factory=dict)  # the row's columns as the book prints them

    def build_config(self, **overrides) -> Config:
        return Config.from_dict({**self.config, **overrides})


@functools.cache
def book():
    """The book's facts, as transcribed in chapter1.json."""
    return json.loads(BOOK_PATH.read_text())


@functools.cache
def facts():
    """The book's facts that code computes with, as fields (facts.json; each checked against the book's wording by a test)."""
    return json.loads(FACTS_PATH.read_text())


def _regularizer(cell):
    """The config keys of a table's Regularizer cell ('dropout(0.45)' -> {'dropout_rate': 0.45})."""
    try:
        return facts()["regularizers"][cell]
    except KeyError:
        raise ValueError(f"the book data has a regularizer facts.json does not declare: {cell!r}") from None


def _listing_presets():
    listings = book()["listings"]
    configs = {
        "1.3.2": dict(family="mlp", hidden_units=[256, 256], activation="relu", dropout_rate=0.45),
        "1.4.1": dict(
            family="cnn",
            filters=[64, 64, 64],
            kernel_size=3,
            pool_after=[0, 1],
            pool_size=2,
            activation="relu",
            dropout_rate=0.2,
        ),
        "1.5.1": dict(family="rnn", cell="simple", rnn_units=[256], dropout_rate=0.2),
    }
    presets = {}
    for number, base in configs.items():
        listing = listings[number]
        config = {
            **base,
            "optimizer": listing["optimizer"],
            "epochs": listing["epochs"],
            "batch_size": listing["batch_size"],
        }
        name = f"listing-{number}"
        summary = ", ".join(listing["layers"]) + f"; {listing['optimizer']}, {listing['epochs']} epochs"
        presets[name] = Preset(
            name=name,
            description=f"Listing {number}: {summary}",
            summary=summary,
            config=config,
            book_test_accuracy=listing.get("reported_test_accuracy"),
            settings={"total_params": listing["total_params"]},
        )
    return presets


def _table_presets(mlp_reading=LISTING_READING):
    tables = book()["tables"]
    presets = {}
    for table_number, table in tables.items():
        table_name = f"table-{table_number}"
        for index, row in enumerate(table["rows"], start=1):
            settings = dict(zip(table["columns"], row))
            config = {
                "family": table["model"],
                "epochs": table["epochs"],
                "batch_size": table["batch_size"],
                "optimizer": settings["optimizer"],
            }
            config.update(_regularizer(settings["regularizer"]))
            if table["model"] == "mlp":
                widths = settings["layers"]
                config["hidden_units"] = widths if mlp_reading == THREE_HIDDEN_READING else widths[:2]
                config["activation"] = "relu" if settings["relu"] else "linear"
                shown = "-".join(map(str, widths)) + ("" if settings["relu"] else ", no relu")
            elif table["model"] == "cnn":
                config.update(
                    filters=settings["filters"], kernel_size=3, pool_after=[0, 1], pool_size=2, activation="relu"
                )
                shown = "filters " + "-".join(map(str, settings["filters"]))
            else:
                config.update(cell="simple", rnn_units=[settings["units"]])
                shown = f"SimpleRNN({settings['units']})"
            name = f"{table_name}-row{index}"
            if table["model"] == "mlp" and mlp_reading != LISTING_READING:
                name += f"@{mlp_reading}"
            summary = f"{shown}, {settings['regularizer']}, {settings['optimizer']}"
            presets[name] = Preset(
                name=name,
                description=f"Table {table_number} row {index}: {summary}",
                summary=summary,
                config=config,
                book_train_accuracy=settings["train_accuracy"],
                book_test_accuracy=settings["test_accuracy"],
                table=table_name,
                row=index,
                settings=settings,
            )
    return presets


@functools.cache
def all_presets() -> dict[str, Preset]:
    """Every preset, listings first, in the book's order."""
    return {**_listing_presets(), **_table_presets()}


# Tags a preset name may carry after '@': the tag, and which presets take it.
TAGS = {THREE_HIDDEN_READING: "table-1.3.2-row"}


def split_tag(name: str) -> tuple[str, str | None]:
    """The one parser of preset names: 'table-1.3.2-row9@three-hidden' -> ('table-1.3.2-row9', 'three-hidden').

    A tag that no preset of that name can carry is refused here, not left to
    fail (or be ignored) later.
    """
    base, at, tag = name.partition("@")
    if not at:
        return name, None
    if tag not in TAGS:
        raise ConfigError(
            f"unknown preset tag {'@' + tag!r} in {name!r}; the one tag is @{THREE_HIDDEN_READING} (Table 1.3.2 rows read as three hidden layers)"
        )
    if not base.startswith(TAGS[tag]):
        raise ConfigError(f"@{tag} applies to Table 1.3.2 rows only (e.g. table-1.3.2-row9@{tag}), not to {base!r}")
    return base, tag


def describe(config: Config, preset: str | None = None) -> str:
    """A short description naming what differs from the preset: 'listing-1.4.1 +padding=same +pooling=average'.

    Without a preset, the config's own description ('mlp 256-256 relu dropout 0.45 adam').
    Seed, dataset and backend are not part of it: they are shown beside it.
    """
    if not preset:
        return config.describe()
    try:
        base = get(preset).build_config().to_dict()
    except ConfigError:  # a run of a preset this mnistlab does not know (an older or newer one): its own description
        return f"{preset}: {config.describe()}"
    changed = []
    for key, value in config.to_dict().items():
        if key not in RUN_KEYS and base.get(key) != value:
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            changed.append(f"+{key}={shown}")
    return " ".join([preset, *changed])


def configure(preset: str | None = None, assignments=(), **changes) -> Config:
    """A preset (or the defaults) with `key=value` overrides (the CLI's --set) and then CHANGES applied, validated.

    How the CLI and the lab both build a config, so that a value one refuses
    the other refuses with the same message; a ConfigError names its `field`.
    Changes of None are left out (an option not given).
    """
    try:
        config = get(preset).build_config() if preset else Config()
    except ConfigError as error:
        error.field = error.field or "preset"
        raise
    config = config.with_overrides(list(assignments))
    return config.replace(**{key: value for key, value in changes.items() if value is not None})


def kept(name: str | None, config: Config) -> str | None:
    """The preset a run of CONFIG is recorded under: NAME, unless the config left it by changing the family (a
    listing-1.3.2 with family=cnn is no MLP of the book, but a custom setup), or NAME is unknown."""
    if not name:
        return None
    try:
        family = get(name).build_config().family
    except ConfigError:
        return name  # a preset of an older mnistlab: kept as it was recorded
    return name if family == config.family else None


def get(name: str) -> Preset:
    """Look a preset up by name; `table-1.3.2-rowN@three-hidden` selects the other MLP reading."""
    presets = all_presets()
    base, tag = split_tag(name)
    if tag is None and name in presets:
        return presets[name]
    if tag is not None:
        variants = _table_presets(tag)
        if name in variants:
            return variants[name]
    close = difflib.get_close_matches(name, list(presets), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"unknown preset {name!r}{hint}; `mnistlab presets` lists them")


def table_rows(table: str, mlp_reading: str = LISTING_READING) -> list[Preset]:
    """The presets of one table (`table-1.3.2`...), in row order."""
    if table not in TABLES:
        raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(TABLES)} or all")
    if mlp_reading not in MLP_READINGS:
        raise ConfigError(f"mlp reading must be one of {', '.join(MLP_READINGS)}, got {mlp_reading!r}")
    presets = _table_presets(mlp_reading) if table == "table-1.3.2" else all_presets()
    return [preset for preset in presets.values() if preset.table == table]
