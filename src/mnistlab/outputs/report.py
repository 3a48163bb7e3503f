"""Reports: one self-contained HTML file (images embedded) plus the PNGs beside it.

- `run_report(run_dir, out)` (`run_report`): learning curves, confusion matrix, the most confidently
  misclassified test digits, per-class accuracy.
- `table_report(table, out)` (`table_report`): the table as reproduced (`tables`), per-row learning curves
  (mean and band across seeds), the comparison with the book, whether backends differ, the disagreement atlas of
  each row's seeds, and the digit-level figures for the row with the best *validation* accuracy (never chosen
  on the test set).
- `compare_report(selectors, out)` (`compare_report`): several setups side by side (`bands`): learning curves
  with 95% bands over seeds, final accuracy with its interval, parameter counts, the book's figure, Welch's
  verdicts, and the atlas of their runs.

`report(targets, out)` chooses among them; the HTML they share is `report_html`'s, the atlas `report_atlas`'s.
"""

import pathlib

from mnistlab.core.errors import MnistlabError, NotFound
from mnistlab.core.presets import TABLES
from mnistlab.outputs.compare_report import compare_report
from mnistlab.outputs.run_report import (
    confident_mistakes,
    confusion_matrix,
    curves_figure,
    per_class_accuracy,
    predict_test_set,
    run_report,
)
from mnistlab.outputs.table_report import table_report

__all__ = [
    "compare_report",
    "confident_mistakes",
    "confusion_matrix",
    "curves_figure",
    "per_class_accuracy",
    "predict_test_set",
    "report",
    "run_report",
    "table_report",
]


def report(targets, out, store_path=None, table_json=None, by=None, dataset=None, backend=None):
    """A table's report for table-1.x.y, a run directory's for one run directory, else a comparison of setups
    (presets, config hashes, group=NAME) with their seed bands."""
    targets = [targets] if isinstance(targets, (str, pathlib.Path)) else list(targets)
    if len(targets) == 1 and not by and not backend:
        target = str(targets[0])
        if target in TABLES:
            return table_report(target, out, store_path=store_path, table_json=table_json)
        if pathlib.Path(target).is_dir():
            return run_report(target, out)
        if target.startswith("table-") and "@" not in target and "-row" not in target:  # a table's name, mistyped
            raise NotFound(f"{target} is no table of the chapter; the tables are {', '.join(TABLES)}")
    if any(str(target) in TABLES for target in targets):
        raise MnistlabError(
            f"a table's report takes the table alone: mnistlab report {next(t for t in targets if str(t) in TABLES)} --out ..."
        )
    return compare_report(
        [str(target) for target in targets], out, store_path=store_path, by=by, dataset=dataset, backend=backend
    )
