"""Render every page, and every README block, that carries measured figures from its committed raw results.

Pages are never edited by hand where they show measurements: each comes from
a raw-results file (JSON with date, commit and machine) written by the
script that measured it. `python scripts/render_docs.py` rewrites them;
`--check` only compares, and exits 1 when a committed page differs from what
its results give (tests/test_docs.py runs that).

    page / block                      results                                  measured by
    docs/install.md                   docs/install/matrix.json                 scripts/check_install_matrix.py
    README.md: install-platforms      docs/install/matrix.json                 scripts/check_install_matrix.py
    README.md: install-sizes          docs/install/sizes.json                  scripts/measure_install_size.py
    docs/use.md: photo-agreement      docs/use/photo-agreement.json            scripts/measure_photo_agreement.py
    docs/experiments.md: seeds        docs/seeds/tables/*.json, atlas.json     scripts/make_seeds_figures.py
    docs/experiments.md: backends-fashion  docs/seeds/fashion/*.json          scripts/reproduce_fashion_backends.py
    docs/reproduction.md              docs/tables/*.json, one-seed console     mnistlab reproduce
    BENCHMARKS.md: serving            benchmarks/serve-results.json            benchmarks/serve_load.py
    BENCHMARKS.md: inside view        benchmarks/explain-results.json          benchmarks/explain_bench.py
    BENCHMARKS.md: the lab            benchmarks/lab-results.json              benchmarks/lab_bench.py
    BENCHMARKS.md: seeds              benchmarks/seeds-results.json            benchmarks/seeds_bench.py
    BENCHMARKS.md: dynamics           benchmarks/dynamics-results.json         benchmarks/dynamics_bench.py
    BENCHMARKS.md: the shared site    benchmarks/site-results.json             benchmarks/site_bench.py
    docs/dynamics.md                  docs/dynamics/claims.json                scripts/measure_dynamics_claims.py
    benchmarks/parity.md              benchmarks/parity-results.json           benchmarks/parity.py
    BENCHMARKS.md                     benchmarks/results-*.json (newest)       benchmarks/bench.py
"""

import argparse
import importlib.util
import json
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(relative):
    return json.loads((REPO / relative).read_text())


def install_page():
    matrix = _load(REPO / "scripts" / "check_install_matrix.py")
    return matrix.render(_json("docs/install/matrix.json"))


def install_platforms_block():
    results = _json("docs/install/matrix.json")
    platforms = {}
    for row in results["rows"]:
        platforms.setdefault(row["platform"], []).append(row)
    lines = ["| platform | Python 3.11 | 3.12 | 3.13 |", "|---|---|---|---|"]
    for name, rows in platforms.items():
        cells = []
        for python in ("3.11", "3.12", "3.13"):
            chosen = [row for row in rows if row["python"] == python]
            cells.append(
                "core + all resolve" if chosen and all(row["resolves"] for row in chosen) else "does not resolve"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"(Resolved {results['date'][:10]} with {results['resolver']}; per-combination details in docs/install.md.)"
    )
    return "\n".join(lines)


def install_sizes_block():
    results = _json("docs/install/sizes.json")
    rows = {row["profile"]: row for row in results["rows"]}
    core, full = rows["core"], rows["all"]
    cuda = "no CUDA package" if not core["cuda_packages"] else f"CUDA packages: {', '.join(core['cuda_packages'])}"
    return (
        f"Disk, a fresh virtual environment on Linux x86_64 (measured {results['date'][:10]} by "
        f"`scripts/measure_install_size.py`, the tested versions): **core {core['megabytes'] / 1000:.1f} GB** "
        f"({core['packages']} packages, {cuda}); **all {full['megabytes'] / 1000:.1f} GB** ({full['packages']} packages, "
        "with the CPU build of torch). These count what `pip list` shows in the environment, pip and mnistlab "
        "included; [docs/install.md](docs/install.md) counts the dependencies a resolver picks from the public index (neither pip nor mnistlab; and for all, the CUDA build of torch)."
    )


def benchmarks_page():
    bench = _load(REPO / "benchmarks" / "bench.py")
    newest = sorted((REPO / "benchmarks").glob("results-*.json"))[-1]
    return (
        bench.render(json.loads(newest.read_text()))
        + "\n"
        + serve_section(_json("benchmarks/serve-results.json"))
        + "\n"
        + explain_section(_json("benchmarks/explain-results.json"))
        + "\n"
        + lab_section(_json("benchmarks/lab-results.json"))
        + "\n"
        + seeds_section(_json("benchmarks/seeds-results.json"))
        + "\n"
        + dynamics_section(_json("benchmarks/dynamics-results.json"))
        + "\n"
        + site_section(_json("benchmarks/site-results.json"))
    )


def site_section(results):
    """The shared site: its size, its first answer, its answer and inside view per stroke, against the targets."""
    machine = ", ".join(f"{key}: {value}" for key, value in results["machine"].items())
    size, targets, met = results["size"], results["targets"], results["targets_met"]
    stroke, drawing = results["per_stroke"], results["while_drawing"]
    parity = ", ".join(f"{row['family']} {row['max_abs_difference']:.1e}" for row in results["parity"])
    verdict = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    lines = [
        "## The shared site: `mnistlab site`",
        "",
        f"Measured by `python benchmarks/site_bench.py` on {results['date']} at commit `{results['commit'][:10]}` ({machine}); "
        f"raw results in `benchmarks/site-results.json`. What: {results['what']}. "
        f"Built by `mnistlab site` in {results['build_seconds']} s (each graph checked against Keras on 256 digits: largest difference {parity}). "
        + "In the page, 1,000 digits (mnist-mini's 600 test digits and 400 of its training digits) against Keras: "
        + ", ".join(
            f"{row['family']} largest difference {row['max_abs_difference']:.1e}, the same class for {100 * row['same_class']:.1f}%"
            for row in results.get("page_parity", [])
        )
        + ".",
        "",
        "| measure | value | target | |",
        "|---|---|---|---|",
        f"| size on disk ({size['files']} files) | {size['bytes'] / 1e6:.1f} MB | {targets['bytes'] / 1e6:.0f} MB | {verdict(size['bytes'] <= targets['bytes'])} |",
        f"| over the wire, each file gzip-compressed | {size['gzip_bytes'] / 1e6:.1f} MB | {targets['gzip_bytes'] / 1e6:.0f} MB | {verdict(size['gzip_bytes'] <= targets['gzip_bytes'])} |",
        f"| first answer after opening the page (empty cache, {len(results['first_answer_ms'])} loads) | "
        f"{', '.join(f'{value:.0f}' for value in results['first_answer_ms'])} ms | {targets['first_answer_ms'] / 1000:g} s | {verdict(met['first_answer'])} |",
        f"| answers and inside views of the 3 models after the pen is lifted ({stroke['n']} strokes) | "
        f"p50 {stroke['p50_ms']} ms, p90 {stroke['p90_ms']}, max {stroke['max_ms']} | {targets['stroke_p50_ms']} ms p50 | {verdict(met['stroke'])} |",
        "",
        "A stroke is drawn at a hand's pace, a point every 16 ms; the page answers each new version of the drawing while the "
        "pen moves (one at a time, the newest waiting), so when the pen is lifted the finished drawing is often answered "
        "already or on its way. Each drawing answered while drawing, from sending it to the workers: the answers shown "
        f"p50 {drawing['answer']['p50_ms']} ms (p90 {drawing['answer']['p90_ms']}), answers and inside views shown "
        f"p50 {drawing['answer_and_inside']['p50_ms']} ms (p90 {drawing['answer_and_inside']['p90_ms']}) over {drawing['answer_and_inside']['n']} drawings.",
    ]
    return "\n".join(lines) + "\n"


def dynamics_section(results):
    """What recording a run's dynamics costs it, per listing and backend, against the 3% target."""
    machine = ", ".join(f"{key}: {value}" for key, value in results["machine"].items())
    lines = [
        "## Dynamics: what recording them costs a run",
        "",
        f"Measured by `python benchmarks/dynamics_bench.py` on {results['date']} at commit `{results['commit'][:10]}` ({machine}); "
        f"raw results in `benchmarks/dynamics-results.json`. What: {results['what']}. "
        "Measuring: epoch 0 (before training, with the probe's functions built) + after each epoch, seconds. "
        "At the book's epochs: the same measurements over the listing's own epochs.",
        "",
        "| listing | backend | epoch s | measuring s | share of this run | at the book's epochs | dynamics.json |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        measuring = " + ".join(f"{value:.2f}" for value in run["measuring_seconds"])
        epochs = ", ".join(f"{value:.1f}" for value in run["epoch_seconds"])
        lines.append(
            f"| {run['listing']} | {run['backend']} | {epochs} | {measuring} | {100 * run['measured_share']:.1f}% "
            f"| {100 * run['at_book_share']:.1f}% ({run['book_epochs']} epochs) | {run['file_bytes'] / 1000:.0f} KB |"
        )
    lines += [
        "",
        f"Target: at most {100 * results['target_share']:.0f}% of a run at the book's epochs: "
        + ("**met**" if results["target_met"] else "**not met**")
        + f" (largest {100 * results['largest_at_book_share']:.1f}%).",
    ]
    return "\n".join(lines) + "\n"


def lab_section(results):
    """The lab: the runs view of 1,000 runs, and how late a curve's point reaches a browser."""
    machine = ", ".join(f"{key}: {value}" for key, value in results["machine"].items())
    listing, curve = results["list"], results["curve"]
    what = curve["what"]
    met = results["targets_met"]
    lines = [
        "## The lab: `mnistlab lab`",
        "",
        f"Measured by `python benchmarks/lab_bench.py` on {results['date']} at commit `{results['commit'][:10]}` ({machine}); raw results in `benchmarks/lab-results.json`.",
        "",
        f"**Runs view.** `GET /api/runs` over a store of {listing['runs']:,} finished runs ({listing['setups']} setups x 4 seeds, folded into one row per setup "
        f"with n, mean and 95% interval), after one warm-up call (the first took {listing['first_call_ms']} ms):",
        "",
        "| path | calls | p50 ms | p90 ms | max ms |",
        "|---|---|---|---|---|",
        f"| in the lab's process (`Lab.list_runs`) | {listing['in_process']['n']} | {listing['in_process']['p50_ms']} | {listing['in_process']['p90_ms']} | {listing['in_process']['max_ms']} |",
        f"| HTTP, one client ({listing['http']['response_kb']} KB answers) | {listing['http']['n']} | {listing['http']['p50_ms']} | {listing['http']['p90_ms']} | {listing['http']['max_ms']} |",
        "",
        f"Target: at most {results['target_list_p50_ms']} ms p50: " + ("**met**." if met["list"] else "**not met**."),
        "",
        f"**Live curves.** A run launched through the lab ({what['preset']}, {what['epochs']} epochs of the first {what['limit']:,} {what['dataset']} images, "
        f"{curve['mean_epoch_seconds']} s per epoch), followed over `GET /api/runs/{{id}}/events` by one HTTP client: each epoch's point arrived "
        f"{curve['epoch_delay']['p50_ms']} ms p50, {curve['epoch_delay']['max_ms']} ms at most, after the training worker made it at the epoch's end; "
        f"{curve['step_events']} progress events within epochs, never more than {curve['longest_gap_s']} s apart. "
        f"Target: a point at most {results['target_delay_s']:g} s after its epoch ends, progress at least every {results['target_delay_s']:g} s: "
        + ("**met**." if met["curve"] else "**not met**."),
    ]
    return "\n".join(lines) + "\n"


def explain_section(results):
    """The inside view's latency: the three models in the server's process and through HTTP, against the 150 ms target."""
    machine = ", ".join(f"{key}: {value}" for key, value in results["machine"].items())
    library, http = results["in_process"], results["http"]
    runs = ", ".join(
        f"{run['preset'] or run['family']} ({run['family'].upper()}, test {100 * run['test_accuracy']:.1f}% on {run['dataset']})"
        for run in results["runs"]
    )
    trained = (
        "trained by the script for 3 epochs on mnist-mini"
        if results["trained_here"]
        else "as the README's main command trains them offline"
    )
    lines = [
        "## The inside view: `mnistlab explain` and `POST /api/explain`",
        "",
        f"Measured by `python benchmarks/explain_bench.py` on {results['date']} at commit `{results['commit'][:10]}` ({machine})"
        + (f", {results['conditions']}" if results.get("conditions") else "")
        + f"; raw results in `benchmarks/explain-results.json`. What: {results['what']}. Runs: {runs}, {trained}.",
        "",
        "| path | drawings | p50 ms | p90 ms | max ms |",
        "|---|---|---|---|---|",
        f"| in the server's process: MLP + CNN + RNN explanations with their compact JSON | {library['three_models']['n']} | {library['three_models']['p50_ms']} | {library['three_models']['p90_ms']} | {library['three_models']['max_ms']} |",
    ]
    for family, row in library["per_model"].items():
        lines.append(
            f"| ... the {family.upper()} alone | {row['n']} | {row['p50_ms']} | {row['p90_ms']} | {row['max_ms']} |"
        )
    for endpoint, row in http.items():
        lines.append(
            f"| HTTP `POST {endpoint}` to `mnistlab serve`, one client ({row['response_kb']} KB answers) | {row['n']} | {row['p50_ms']} | {row['p90_ms']} | {row['max_ms']} |"
        )
    stages = "; ".join(
        f"{family.upper()}: "
        + ", ".join(f"{key.removesuffix('_ms').replace('_', ' ')} {value} ms" for key, value in stage.items())
        for family, stage in library["stages"].items()
    )
    steps = ", ".join(
        f"{family.upper()} {'/'.join(map(str, values))}" for family, values in library["ig_steps"].items()
    )
    met = results["target_met"]
    lines += [
        "",
        f"Where the time goes, per model (mean of 20 calls on one drawing): {stages}. Integrated-gradient steps used: {steps} "
        "(32 to start, doubled until the attributions sum to f(x) - f(blank) within 5%).",
        "",
        f"Target: at most {results['target_p50_ms']} ms p50 for the three listings: "
        + (
            "**met**, in the process and through HTTP."
            if met
            else "**not met**: the stages above say where the time goes."
        ),
    ]
    return "\n".join(lines) + "\n"


def seeds_section(results):
    """The disagreement atlas' speed against its 200 ms target, and what a run's per-example predictions cost it."""
    machine = ", ".join(f"{key}: {value}" for key, value in results["machine"].items())
    timing = results["atlas"]
    lines = [
        "## Seeds as the unit: the disagreement atlas and per-example predictions",
        "",
        f"Measured by `python benchmarks/seeds_bench.py` on {results['date']} at commit `{results['commit'][:10]}` ({machine})"
        + (f", {results['conditions']}" if results.get("conditions") else "")
        + f"; raw results in `benchmarks/seeds-results.json`. What: {results['what']}.",
        "",
        "| call | runs x digits | p50 ms | p90 ms | max ms |",
        "|---|---|---|---|---|",
        f"| `atlas.disagreement(run_dirs)` (`mnistlab runs disagree`) | {timing['runs']} x {timing['digits']:,} | {timing['atlas']['p50_ms']} | {timing['atlas']['p90_ms']} | {timing['atlas']['max_ms']} |",
        f'| ... `by="backend"` (3 groups, {timing["groups_test"]}) | {timing["runs"]} x {timing["digits"]:,} | {timing["atlas_by_backend"]["p50_ms"]} | {timing["atlas_by_backend"]["p90_ms"]} | {timing["atlas_by_backend"]["max_ms"]} |',
        "",
        f"The first call in the process: {timing['first_call_ms']} ms. One run's predictions.npz for {timing['digits']:,} digits: {timing['file_bytes'] / 1024:.0f} KB. "
        f"Target: at most {results['target_ms']} ms: " + ("**met**." if results["target_met"] else "**not met**."),
    ]
    cost = results.get("predictions")
    if cost:
        lines += [
            "",
            f"What keeping the predictions costs a run: {cost['preset']} (the MLP, the cheapest run per epoch, so the largest share) on {cost['backend']}, "
            f"{cost['epochs']} epochs on {cost['train_samples']:,} training images (MNIST's test images tiled 6 times: the training images are not on this machine; the timing is a full-size run's). "
            f"The run evaluates its {cost['test_samples']:,} test digits and takes their answers from the same pass ({cost['evaluate_seconds']:.2f} s); keeping them adds "
            f"**{1000 * cost['predictions_seconds']:.1f} ms of {cost['run_seconds']:.1f} s, {100 * cost['share']:.3f}% of the run** (budget: 1%) and a {cost['file_bytes'] / 1024:.0f} KB file. "
            f"For comparison, a second pass (Keras' evaluate on the same model, a first call as a run's would be) took {cost['keras_evaluate_seconds']:.2f} s ({100 * cost['second_pass_share']:.2f}% of the run). "
            f"The one pass gives evaluate's figures: the same accuracy {'to the bit' if cost['same_accuracy_as_keras'] else '(NOT the same)'}, "
            + (
                "the same loss."
                if cost["loss_relative_difference"] == 0
                else f"the loss within {cost['loss_relative_difference']:.1e} (float32 rounding)."
            )
            + " "
            "Every run records its own share: `predictions_seconds` beside `seconds` in metrics.json.",
        ]
    return "\n".join(lines) + "\n"


SERVE_TARGET = {"clients": 50, "requests_per_second": 500, "p99_ms": 150}


def serve_section(results):
    """The serve load test: each server side by side (worker counts, the server before), the classroom replay, the profile, the target."""
    machine = ", ".join(f"{key}: {value}" for key, value in results["machine"].items())
    servers = results["servers"]
    rows = [
        "| server | clients | requests | requests/s | p50 ms | p99 ms | errors | shed (503) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for server in servers:
        for level in server["levels"]:
            got = level["predict"]
            rows.append(
                f"| {_server_name(server)} | {level['clients']} | {got['requests']} | {got['requests_per_second']} | {got['p50_ms']} | {got['p99_ms']} | {got['errors']} | {got['shed_503']} |"
            )
    room = [
        "| server | predict requests | predict p50 ms | predict p99 ms | predict 5xx | explain requests | explain p50 ms | explain p99 ms | explain shed (503) | replaced (409) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server in servers:
        predict, explain = server["classroom"]["predict"], server["classroom"]["explain"]
        room.append(
            f"| {_server_name(server)} | {predict['requests']} | {predict['p50_ms']} | {predict['p99_ms']} | {predict['errors'] + predict['shed_503']} | {explain['requests']} | {explain['p50_ms']} | {explain['p99_ms']} | {explain['shed_503']} | {explain['replaced_409']} |"
        )
    best = max(
        (server for server in servers if server["workers"] is not None),
        key=lambda server: _at_target(server)["requests_per_second"],
    )
    at_target = _at_target(best)
    met = (
        at_target["requests_per_second"] >= SERVE_TARGET["requests_per_second"]
        and at_target["p99_ms"] <= SERVE_TARGET["p99_ms"]
        and at_target["errors"] == 0
        and at_target["shed_503"] == 0
    )
    classroom = best["classroom"]["predict"]
    classroom_met = classroom["p99_ms"] <= SERVE_TARGET["p99_ms"] and classroom["errors"] + classroom["shed_503"] == 0
    profile = results["profile_ms"]
    lines = [
        "## Serving: `mnistlab serve` under load",
        "",
        f"Measured by `python benchmarks/serve_load.py` on {results['date']} at commit `{results['commit'][:10]}` "
        f"({machine}); raw results in `benchmarks/serve-results.json`. Request: {results['request']}. Note: {results['clients_note']}.",
        "Each server is `mnistlab serve` started as a user starts it; `workers=0` keeps the models in the server's own process, "
        "`workers=N` puts them in N worker processes behind one HTTP front (`mnistlab.serving.workers`), and one explain worker at a lower priority; "
        "`baseline` is the server before that issue, and any other named server the commit its name gives, each with its own default workers.",
        "",
        *rows,
        "",
        f"The classroom replay: {results['classroom']}.",
        "",
        *room,
        "",
        "Where one request's time goes (mean over 300 calls in one process, ms): "
        + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in profile.items())
        + f". Total {sum(profile.values()):.2f} ms of work before HTTP.",
        "",
        f"Target: at least {SERVE_TARGET['requests_per_second']} requests/s at {SERVE_TARGET['clients']} clients with p99 at most {SERVE_TARGET['p99_ms']} ms and no errors; "
        f"in the classroom, predict p99 at most {SERVE_TARGET['p99_ms']} ms and no 5xx. Best here `{_server_name(best)}`: "
        + (
            f"{at_target['requests_per_second']} requests/s, p99 {at_target['p99_ms']} ms: **met**"
            if met
            else f"**not met** ({at_target['requests_per_second']} requests/s, p99 {at_target['p99_ms']} ms)"
        )
        + f"; classroom predict p99 {classroom['p99_ms']} ms: "
        + ("**met**." if classroom_met else "**not met**."),
    ]
    return "\n".join(lines) + "\n"


def _server_name(server):
    return server["server"] if server["workers"] is None else f"workers={server['workers']}"


def _at_target(server):
    level = next(level for level in server["levels"] if level["clients"] == SERVE_TARGET["clients"])
    return level["predict"]


# The comparisons docs/reproduction.md shows: (table, row A, row B, what differs).
COMPARISONS = [
    ("table-1.4.1", 3, 2, "adam vs rmsprop"),
    ("table-1.4.1", 3, 4, "adam: dropout 0.2 vs 0.4"),
    ("table-1.4.1", 3, 1, "adam vs sgd"),
    ("table-1.5.1", 1, 4, "sgd: 256 vs 512 units"),
    ("table-1.5.1", 1, 2, "sgd vs rmsprop"),
]


def reproduction_page():
    """docs/reproduction.md from the reproduced tables (docs/tables/*.json) and the one-seed run's console output."""
    from mnistlab.analysis import tables
    from mnistlab.core import stats

    reproduced = {}
    for path in sorted((REPO / "docs" / "tables").glob("table-*-s3-*.json")):
        table = tables.with_book_rule(json.loads(path.read_text()))  # each row held against the book only on its data
        reproduced[table["table"]] = (path, table)
    lines = [
        "# Full-size reproduction of Tables 1.4.1 and 1.5.1",
        "",
        "Generated by `python scripts/render_docs.py` from the tables that `mnistlab reproduce` wrote",
        "([docs/tables/](tables/)); do not edit by hand.",
        "",
        "Command (one per table): `mnistlab reproduce table-1.4.1 --seeds 3 --dataset fashion-mnist` and the same for",
        "`table-1.5.1`, on Fashion-MNIST (Debian's `dataset-fashion-mnist`; the MNIST training images cannot be fetched on the",
        "machine that ran it), full size: 54,000 training images (10% held out for validation, seeded), the book's epochs,",
        "batch 128, `--backend auto`, seeds 0, 1, 2, on a 2-core AMD EPYC VM.",
        "",
        "The book's figures are for MNIST; Fashion-MNIST is a harder task, so the measured accuracies are lower, and no row",
        "is held against the book's figure: a verdict against the book ('book test in CI') is given only for runs on full",
        "MNIST (60,000 training images), with the row's epochs and settings, over at least 3 seeds (`mnistlab.analysis.book.comparable`,",
        "the one rule of the CLI, the reports, the table exports and the lab); elsewhere the figure is shown with the reason",
        "and 'comparable' says *no*. What carries over is the comparison *between rows*. A seed counts once: where a setup and",
        "seed were trained more than once, the newest run counts and the others are said as repeats. The epoch times",
        "were measured while other jobs shared the two cores, before the TensorFlow input-pipeline fix: they are not speed",
        "figures (those are in [BENCHMARKS.md](../BENCHMARKS.md)).",
        "",
    ]
    for name, (path, table) in reproduced.items():
        lines += [
            tables.markdown(name, table["rows"], table["context"]).rstrip(),
            "",
            f"Raw: [{path.name}](tables/{path.name}).",
            "",
        ]
    lines += [
        "## What the seeds say",
        "",
        "Welch's t-test over the 3 seeds (what `mnistlab runs compare` computes), from the tables above:",
        "",
        "| comparison | difference (points) | 95% CI | verdict |",
        "|---|---|---|---|",
    ]
    significant = []
    for name, row_a, row_b, what in COMPARISONS:
        rows = {row["row"]: row for row in reproduced[name][1]["rows"]}
        result = stats.compare_summaries(rows[row_a]["test"], rows[row_b]["test"])
        verdict = ("significant" if result["significant"] else "not significant") + (
            f" (p = {result['p_value']:.2g})" if result["p_value"] >= 0.001 else " (p < 0.001)"
        )
        lines.append(
            f"| {name.removeprefix('table-')} row {row_a} vs row {row_b} ({what}) | {result['difference']:+.2f} | [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}] | {verdict} |"
        )
        if result["significant"]:
            significant.append(f"{name.removeprefix('table-')} {what}")
    lines += [
        "",
        "Of these, significant at 95%: "
        + (", ".join(significant) if significant else "none")
        + ". The others are within what three seeds vary by here.",
        "",
    ]
    lines += one_seed_section()
    lines += [
        "",
        "The HTML report of this reproduction of Table 1.4.1 (`mnistlab report table-1.4.1 --out ...`):",
        "[docs/reports/table-1.4.1.html](reports/table-1.4.1.html), with its PNGs in `docs/reports/table-1.4.1_files/`.",
        "",
    ]
    return "\n".join(lines)


def one_seed_section():
    """The whole chapter at one seed: wall time and per-family row times, read from the run's console output."""
    console = (REPO / "docs" / "tables" / "one-seed-timing" / "console.txt").read_text()
    real = re.search(r"^real\s+(\d+)m([\d.]+)s", console, re.M)
    seconds = {}
    for table, row, took in re.findall(r"\] (table-[\d.]+)-row(\d+) seed \d+: test [\d.]+% \((\d+) s\)", console):
        seconds.setdefault(table, []).append(int(took))
    minutes, rest = int(real.group(1)), float(real.group(2))
    families = {"table-1.3.2": "MLP", "table-1.4.1": "CNN", "table-1.5.1": "RNN"}
    spans = ", ".join(
        f"the {len(values)} {families[table]} rows {min(values)}-{max(values)} s each"
        for table, values in seconds.items()
    )
    return [
        f"## The whole chapter at one seed: {minutes} min {rest:.0f} s",
        "",
        "`time mnistlab reproduce all --seeds 1 --dataset fashion-mnist`: all 26 rows of the three tables, full size, the book's",
        "epochs, `--backend auto`, one local worker, after the TensorFlow input-pipeline fix. Per row (training, evaluation and",
        f"saving, as printed): {spans}. The tables it printed and its console output are in",
        "[docs/tables/one-seed-timing/](tables/one-seed-timing/).",
    ]


def parity_page():
    parity = _load(REPO / "benchmarks" / "parity.py")
    return parity.render(_json("benchmarks/parity-results.json"))


def dynamics_page():
    claims = _load(REPO / "scripts" / "measure_dynamics_claims.py")
    return claims.render(_json("docs/dynamics/claims.json"))


PAGES = {
    "docs/install.md": install_page,
    "BENCHMARKS.md": benchmarks_page,
    "docs/reproduction.md": reproduction_page,
    "docs/dynamics.md": dynamics_page,
}
if (REPO / "benchmarks" / "parity-results.json").exists():
    PAGES["benchmarks/parity.md"] = parity_page


def photo_agreement_block():
    results = _json("docs/use/photo-agreement.json")
    models = results["models"]
    first = next(iter(models.values()))
    lines = [
        f"Measured {results['date'][:10]} at commit `{results['commit'][:10]}` on {results['count']} {results['dataset']} test digits, "
        f"with the three book listings trained by `mnistlab listings --dataset {first['trained_on']}` (the book's epochs) on that sample's training digits:",
        "",
        "| model | same class as on the clean digit | accuracy, clean | accuracy, photo-like |",
        "|---|---|---|---|",
    ]
    for family, model in models.items():
        lines.append(
            f"| {model['preset']} ({family.upper()}) | **{100 * model['agreement']:.1f}%** | {100 * model['clean_accuracy']:.1f}% | {100 * model['photo_accuracy']:.1f}% |"
        )
    same = min(model["reprocessed_same_class"] for model in models.values())
    lines += [
        "",
        f"Running a test digit through the preprocessing again gives back nearly the same image (mean absolute difference "
        f"{results['reprocessed_mean_abs_difference']:.4f}; same class on at least {100 * same:.1f}%), because the pipeline "
        "reproduces MNIST's own: ink box scaled to 20 px, centre of mass at pixel (14, 14).",
    ]
    return "\n".join(lines)


def seeds_block():
    """docs/experiments.md's small reproduction across backends (mnist-mini): the table, whether backends differ, the atlas' answer."""
    [path] = sorted((REPO / "docs" / "seeds" / "tables").glob("table-*.json"))
    return _backends_block(path, REPO / "docs" / "seeds" / "atlas.json")


def fashion_backends_block():
    """docs/experiments.md's full-size reproduction across backends (Fashion-MNIST), by scripts/reproduce_fashion_backends.py."""
    folder = REPO / "docs" / "seeds" / "fashion"
    [path] = sorted(folder.glob("table-*.json"))
    return _backends_block(path, *sorted(folder.glob("atlas-row*.json")))


def _backends_block(table_path, *atlas_paths):
    """A reproduced table (its markdown, with the backend verdicts), its raw file, and each atlas' answer."""
    from mnistlab.analysis import tables

    table = tables.with_book_rule(json.loads(table_path.read_text()))  # each row held against the book only on its data
    link = table_path.relative_to(REPO / "docs").as_posix()
    lines = [
        tables.markdown(table["table"], table["rows"], table["context"]).rstrip().replace("### ", "#### ", 1),
        "",
        f"Raw: [{table_path.name}]({link}).",
        "",
    ]
    for atlas_path in atlas_paths:
        atlas = json.loads(atlas_path.read_text())
        groups = ", ".join(
            f"{name} {group['disagreed']} ({100 * group['disagreement_rate']:.1f}%)"
            for name, group in atlas["groups"].items()
        )
        test = atlas["groups_test"]
        lines += [
            f"The atlas of these {len(atlas['runs'])} runs (`mnistlab runs disagree {' '.join(sorted({run['preset'] for run in atlas['runs']}))} --by backend`): "
            f"they disagree on {atlas['disagreed']} of the {atlas['test_digits']} test digits ({100 * atlas['disagreement_rate']:.1f}%) and all get {atlas['all_wrong']} wrong; "
            f"within one backend, digits disagreed on: {groups}. Pairs of runs on different backends disagree on {100 * test['across_groups_rate']:.2f}% of the digits, "
            f"pairs on one backend on {100 * test['within_group_rate']:.2f}% (permutation test, p = {test['p_value']:.3g}): "
            + ("the backends differ beyond seed noise." if test["differ"] else "no difference beyond seed noise."),
            "",
        ]
    return "\n".join(lines).rstrip()


def config_keys_block():
    """docs/configuration.md's table of knobs, from their one declaration (mnistlab.core.config)."""
    from mnistlab.core import config

    def cell(text):
        return str(text).replace("|", "\\|")

    lines = ["| key | family | type | default | choices / bounds | meaning |", "|---|---|---|---|---|---|"]
    for key in config.describe_keys():
        allowed = ", ".join(key["choices"]) or key["bounds"]
        if key["aliases"]:
            allowed += " (also " + ", ".join(f"{alias} = {value}" for alias, value in key["aliases"].items()) + ")"
        default = "none" if key["default"] is None else key["default"]
        lines.append(
            f"| `{key['name']}` | {key['family'] or 'all'} | {key['type']} | {cell(default)} | {cell(allowed)} | {cell(key['help'])} |"
        )
    return "\n".join(lines)


BLOCKS = {
    "README.md": {"install-platforms": install_platforms_block, "install-sizes": install_sizes_block},
    "docs/use.md": {"photo-agreement": photo_agreement_block},
    "docs/configuration.md": {"config-keys": config_keys_block},
    "docs/experiments.md": {"seeds": seeds_block, "backends-fashion": fashion_backends_block},
}


def _with_blocks(text, blocks):
    for name, render in blocks.items():
        pattern = re.compile(
            rf"(<!-- generated: {re.escape(name)} [^\n]*-->\n)(.*?)(<!-- end: {re.escape(name)} -->)", re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"error: no '{name}' block markers in the page")
        text = pattern.sub(lambda match: match.group(1) + render() + "\n" + match.group(3), text)
    return text


def rendered():
    """{relative path: the text it should have}."""
    pages = {path: render() for path, render in PAGES.items()}
    for path, blocks in BLOCKS.items():
        pages[path] = _with_blocks((REPO / path).read_text(), blocks)
    return pages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a committed page differs")
    args = parser.parse_args()
    stale = []
    for path, text in rendered().items():
        current = (REPO / path).read_text()
        if current != text:
            stale.append(path)
            if not args.check:
                (REPO / path).write_text(text)
    if args.check:
        for path in stale:
            print(
                f"error: {path} differs from what its committed results give; run python scripts/render_docs.py",
                file=sys.stderr,
            )
        return 1 if stale else 0
    print("Rewrote " + (", ".join(stale) if stale else "nothing (all pages match their results)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
