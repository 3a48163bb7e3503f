"""What the lab's pages show of the store: the runs folded by setup, one run, setups compared, the chapter's tables.

Seeds are the unit: runs that differ only by seed are one row (n, mean, 95% interval), a seed trained again
counts once (`seeds.select_counted`), and the book's figure has a verdict only where the runs are the book's
setup (`book.against_book`). Comparisons are `bands.compare_setups`, tables `tables.table_data`: the numbers
of `mnistlab runs compare`, `report A B` and `report TABLE`.
"""

import collections
import dataclasses
import json
import pathlib

from mnistlab.analysis import bands, book, seeds, tables
from mnistlab.core import config as config_lib
from mnistlab.core import presets, stats
from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError, MnistlabError, NotFound, RequestError
from mnistlab.core.events import RunStatus
from mnistlab.ml import data
from mnistlab.record import rundir
from mnistlab.record.store import RunFacets, RunFilter, Store

SORTS = ("started", "test", "n", "setup")
SORT_KEYS = {
    "started": lambda group: group["started_at"],
    "test": lambda group: (group["test"]["mean"] is not None, group["test"]["mean"] or 0),
    "n": lambda group: group["n"],
    "setup": lambda group: group["setup"],
}


@dataclasses.dataclass(frozen=True)
class RunsQuery(RunFacets):
    """What the runs view shows: runs of this status, preset, family, dataset and backend (empty: any), whose
    setup's words hold Q, in this order, folded by setup or one row a run. /api/runs's query parameters."""

    q: str | None = None
    sort: str = "started"
    order: str = "desc"
    fold: bool = True


class RunViews:
    """The lab's views of the store at STORE_PATH, with each running run's latest progress from HUB."""

    def __init__(self, store_path, hub):
        self.store_path = store_path
        self.hub = hub
        self._descriptions = {}
        self._summaries = {}

    def describe(self, row):
        """What sets a run apart from its preset ('listing-1.4.1 +padding=same'), once per setup."""
        key = (row["config_hash"], row["preset"], row["family"])
        if key not in self._descriptions:
            self._descriptions[key] = presets.describe(Config.from_dict(json.loads(row["config_json"])), row["preset"])
        return self._descriptions[key]

    def list_runs(self, query: RunsQuery):
        """The runs view: runs that differ only by seed folded into one row (n, mean, 95% interval), filtered and sorted."""
        if query.sort not in SORTS:
            raise ConfigError(f"sort must be one of {', '.join(SORTS)}, got {query.sort!r}", field="sort")
        if query.order not in ("asc", "desc"):
            raise ConfigError(f"order must be asc or desc, got {query.order!r}", field="order")
        # The status picks setups with a run of it, below: not the runs read.
        facets = [field.name for field in dataclasses.fields(RunFacets) if field.name != "status"]
        where = RunFilter(**{name: getattr(query, name) or None for name in facets})
        with Store(self.store_path) as store:
            sequence = self.hub.sequence  # events after this one are news to the page
            rows = store.summaries(where)
        groups = {}
        for row in rows:
            key = (row["config_hash"], row["dataset_hash"], row["backend"]) if query.fold else row["id"]
            groups.setdefault(key, []).append(row)
        needle = (query.q or "").lower()
        shown = []
        for members in groups.values():
            if query.status and not any(member["status"] == query.status for member in members):
                continue
            group = self._group(members)
            if not needle or needle in group["setup"].lower():
                shown.append(group)
        shown.sort(key=SORT_KEYS[query.sort], reverse=query.order == "desc")
        return {
            "groups": shown,
            "total_runs": len(rows),
            "shown_runs": sum(len(group["members"]) for group in shown),
            "seq": sequence,
        }

    def _group(self, members):
        """One row of the runs view: a setup's runs (one per seed counted; repeats said as such), over seeds."""
        first = members[0]
        done, repeats = seeds.select_counted(members)
        test = self._summary(tuple(100 * member["test_accuracy"] for member in done))
        # The book's figure; a verdict against it only where the runs are the book's setup (book.comparable).
        against = book.against_book(done, first["preset"], test)
        return {
            "key": f"{first['config_hash']}:{first['dataset_hash'][:16]}:{first['backend']}",
            "setup": self.describe(first),
            "config_hash": first["config_hash"],
            "preset": first["preset"],
            "family": first["family"],
            "dataset": first["dataset"],
            "backend": first["backend"],
            "n": len(done),
            "runs": len(members),
            "repeats": seeds.repeats_summary(done, repeats),
            "statuses": dict(collections.Counter(member["status"] for member in members)),
            "seeds": sorted({member["seed"] for member in members}),
            "test": test,
            "val_mean": _mean([100 * member["val_accuracy"] for member in done if member["val_accuracy"] is not None]),
            "train_mean": _mean(
                [100 * member["train_accuracy"] for member in done if member["train_accuracy"] is not None]
            ),
            "seconds_mean": _mean([member["seconds"] for member in done if member["seconds"] is not None]),
            "book_test": against["book_test"],
            "book_where": against["book_where"],
            "book_comparable": against["comparable"],
            "book_reason": against["reason"],
            "book_in_interval": against["inside"],
            # The seed a shared site shows for this setup (`POST /api/site`): the best on validation, as serve chooses.
            "site_run": max(done, key=lambda member: member["val_accuracy"] or 0.0)["id"] if done else None,
            "started_at": max(member["started_at"] for member in members),
            "members": self._members(members, {repeat["id"]: repeat["repeat_of"] for repeat in repeats}),
        }

    def _members(self, members, repeat_of):
        return [
            {
                "run_id": member["id"],
                "seed": member["seed"],
                "status": member["status"],
                "error": member["error"],
                "repeat_of": repeat_of.get(member["id"]),
                "test_accuracy": member["test_accuracy"],
                "seconds": member["seconds"],
                "progress": self.hub.latest(member["id"]) if member["status"] == RunStatus.RUNNING else None,
            }
            for member in sorted(members, key=lambda member: (member["seed"], member["id"]))
        ]

    def _summary(self, values):
        """stats.summarize of these accuracies, once per distinct set: the t quantile costs more than the rest of a row."""
        if values not in self._summaries:
            if len(self._summaries) > 100_000:
                self._summaries.clear()
            self._summaries[values] = stats.summarize(values, bounds=stats.PERCENT)
        return self._summaries[values]

    def run_detail(self, run_id):
        """One run: settings and what differs from its preset, status, metrics, history (as far as it went), its setup's other runs."""
        with Store(self.store_path) as store:
            run = store.show(run_id)
            setup = store.summaries(
                RunFilter(config_hash=run["config_hash"], dataset_hash=run["dataset_hash"], backend=run["backend"])
            )
        config = Config.from_dict(run["config"])
        history = run.pop("epochs")
        if not history and run.get("run_dir"):
            history = rundir.read_history(run["run_dir"])  # a run in progress: its directory has the epochs so far
        fields = ("status", "error", "preset", "dataset", "backend", "seed", "attempt", "test_accuracy")
        fields += ("val_accuracy", "train_accuracy", "seconds", "started_at", "finished_at", "run_dir")
        return {
            "run_id": run_id,
            **{field: run[field] for field in fields},
            "setup": presets.describe(config, run["preset"]),
            "model": config.describe(),
            "family": config.family,
            "settings": config.to_dict(),
            "changed": _changed(config, run["preset"]),
            "metrics": run.get("metrics"),
            "history": history,
            "progress": self.hub.latest(run_id),
            "launch": run.get("launch"),
            "labels": list(data.class_names(run["dataset"])),
            "has_model": bool(run["run_dir"]) and (pathlib.Path(run["run_dir"]) / rundir.MODEL_FILE).exists(),
            **_siblings(run_id, setup),
        }

    def run_dynamics(self, run_id):
        """The run's dynamics (ml/dynamics.py) as far as it has trained: every epoch's figures and histograms."""
        with Store(self.store_path) as store:
            run = store.show(run_id)
        record = rundir.read_dynamics(run["run_dir"]) if run.get("run_dir") else None
        if record is None:
            raise NotFound(
                f"run {run_id} has no dynamics recorded"
                + (" yet" if run["status"] in ("queued", "running") else " (dynamics=false, or made before them)")
            )
        return record

    # -- seeds as the unit: setups compared, the chapter's tables ------

    def compare(self, selectors, by=None, backend=None, dataset=None):
        """Setups side by side over their seeds: `bands.compare_setups`, the numbers of `mnistlab runs compare` and `report A B`."""
        if not selectors:
            raise RequestError(
                "name the setups to compare: ?setup=A&setup=B (presets, config hashes or group=NAME)", 422
            )
        return bands.compare_setups(
            selectors, store_path=self.store_path, dataset=dataset or None, by=by or None, backend=backend or None
        )

    def tables(self):
        """The chapter's tables, each with the reproduction the lab exports (the newest `mnistlab reproduce` wrote) where there is one."""
        listed = []
        for table in presets.TABLES:
            try:
                reproduced = tables.table_data(table, store_path=self.store_path)
            except NotFound:
                listed.append({"table": table, "reproduced": False})
                continue
            except MnistlabError as error:  # a table file that cannot be read: said beside it, the others still listed
                listed.append({"table": table, "reproduced": False, "error": str(error)})
                continue
            listed.append(
                {
                    "table": table,
                    "reproduced": True,
                    "context": reproduced["context"],
                    "source": reproduced["source"],
                    "rows": len(reproduced["rows"]),
                }
            )
        return {"tables": listed, "formats": list(tables.FORMATS)}

    def table(self, table, format):
        """(text, file name) of the reproduced TABLE in FORMAT: what `mnistlab report TABLE --format FORMAT` writes."""
        reproduced = tables.table_data(table, store_path=self.store_path)
        name = pathlib.Path(reproduced["source"]).stem + tables.SUFFIXES[format]
        return tables.table_export(reproduced, format), name


def _changed(config, preset):
    """{key: {"preset", "run"}} of what CONFIG sets otherwise than its preset (or its family's defaults)."""
    base = presets.get(preset).build_config().to_dict() if preset else Config(family=config.family).to_dict()
    return {
        key: {"preset": base.get(key), "run": value}
        for key, value in config.to_dict().items()
        if key not in config_lib.RUN_KEYS and base.get(key) != value
    }


def _siblings(run_id, setup):
    """{"siblings", "repeat_of"}: the setup's other runs, and which finished runs are repeats of a seed
    (`seeds.select_counted`: the newest counts), this one included."""
    repeat_of = {repeat["id"]: repeat["repeat_of"] for repeat in seeds.select_counted(setup)[1]}
    siblings = [
        {
            "id": other["id"],
            "seed": other["seed"],
            "status": other["status"],
            "test_accuracy": other["test_accuracy"],
            "repeat_of": repeat_of.get(other["id"]),
        }
        for other in setup
        if other["id"] != run_id
    ]
    return {"siblings": siblings, "repeat_of": repeat_of.get(run_id)}


def _mean(values):
    return sum(values) / len(values) if values else None
