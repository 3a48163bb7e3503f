import json

import pytest

from mnistlab.core import stats
from mnistlab.core.errors import ConfigError

# Welch's t-test, example 1 of the Wikipedia article: t = -2.46, dof = 24.99, p = 0.021.
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_summary_t_interval_known_values():
    summary = stats.summarize([1, 2, 3, 4, 5])
    assert summary["mean"] == 3 and summary["std"] == pytest.approx(1.5811388)
    # t(0.975, 4) = 2.776445: 3 +- 2.776445 * 1.5811388 / sqrt(5)
    assert summary["ci_low"] == pytest.approx(1.0367568) and summary["ci_high"] == pytest.approx(4.9632432)


def test_summary_of_one_or_none():
    assert stats.summarize([98.1])["ci_low"] is None
    assert stats.summarize([])["mean"] is None
    assert stats.inside(98.0, stats.summarize([98.1])) is None
    assert stats.inside(3.5, stats.summarize([1, 2, 3, 4, 5])) is True
    assert stats.inside(5.5, stats.summarize([1, 2, 3, 4, 5])) is False


def test_welch_against_published_example():
    result = stats.compare(A1, A2)
    assert result["degrees_of_freedom"] == pytest.approx(24.99, abs=0.01)
    assert result["p_value"] == pytest.approx(0.021, abs=0.001)
    assert result["difference"] == pytest.approx(-2.1667, abs=1e-4)
    assert result["significant"] and "significant at 95%" in result["verdict"]
    assert result["ci_low"] < result["difference"] < result["ci_high"] < 0
    assert stats.effect_size_words(result["cohens_d"]) == "large"


def test_seed_noise_is_not_significant():
    result = stats.compare([98.1, 98.3, 98.0], [98.2, 98.0, 98.3])
    assert not result["significant"] and "not significant" in result["verdict"]


def test_identical_deterministic_runs():
    assert stats.compare([98.0, 98.0], [98.0, 98.0])["p_value"] == 1.0


def test_no_spread_with_a_difference_is_strict_json():
    # Deterministic repeats on both sides, different means: d is infinite, which JSON cannot hold (the lab's answers).
    result = stats.compare([98.0, 98.0, 98.0], [97.0, 97.0, 97.0])
    assert result["cohens_d"] is None and "d = inf" in result["verdict"] and result["significant"]
    json.dumps(result, allow_nan=False)


def test_needs_two_runs_per_side():
    with pytest.raises(ConfigError, match="at least 2 runs"):
        stats.compare([98.0], [97.0, 97.5])


def test_accuracy_intervals_stay_within_0_and_100_and_two_seeds_give_no_verdict():
    # Two seeds far apart: the raw t-interval reads [-124.83, 192.83] (t = 12.71 with 1 degree of freedom).
    summary = stats.summarize([30.0, 38.0], bounds=(0.0, 100.0))
    assert summary["ci_low"] == 0.0 and summary["ci_high"] <= 100.0
    raw = stats.summarize([30.0, 38.0])
    assert raw["ci_low"] < 0  # the unbounded interval does leave [0, 100]
    assert stats.inside(34.0, summary) is None  # 2 seeds: no "book in CI" verdict
    three = stats.summarize([97.9, 98.1, 98.0], bounds=(0.0, 100.0))
    assert stats.inside(98.0, three) is True and stats.inside(99.0, three) is False


def test_seed_bands_are_cut_to_what_each_quantity_can_be():
    """Two seeds far apart: the t-interval (t = 12.7) reaches past 100% accuracy and below a loss of 0; the band is
    cut there, so a plot's axis is not stretched to 153% or -0.37 (the lab's compare view and the reports draw these)."""
    from mnistlab.analysis import bands

    histories = [
        [{"loss": 0.05, "val_loss": 0.1, "accuracy": 0.99, "val_accuracy": 0.98}],
        [{"loss": 1.5, "val_loss": 2.0, "accuracy": 0.40, "val_accuracy": 0.10}],
    ]
    drawn = bands.bands(histories)
    for metric in ("accuracy", "val_accuracy"):
        assert drawn[metric][0]["ci_low"] == 0.0 and drawn[metric][0]["ci_high"] == 1.0, drawn[metric]
    for metric in ("loss", "val_loss"):
        assert drawn[metric][0]["ci_low"] == 0.0 and drawn[metric][0]["ci_high"] > 2.0, drawn[metric]


def test_two_seeds_wide_band_does_not_squash_the_other_curves(tmp_path, drawn):
    """A 2-seed setup's band (t = 12.7) is cut to the plot, which the means and the bands of 3 seeds or more set,
    and its legend says so; the 3-seed setup's curve keeps its room."""
    from mnistlab.outputs import compare_report

    def rows(mean, half, n):
        return [
            {"epoch": epoch, "mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n} for epoch in (1, 2, 3)
        ]

    setups = [
        {"name": "three seeds", "bands": {"val_loss": rows(0.30, 0.01, 3)}},
        {"name": "two seeds", "bands": {"val_loss": rows(0.32, 2.5, 2)}},
    ]
    compare_report.bands_figure(setups, tmp_path / "bands.png", "validation loss", metrics=("val_loss",))
    axis = drawn[-1].axes[0]
    low, high = axis.get_ylim()
    assert low > 0.25 and high < 0.4, (low, high)  # set by the means and the 3-seed band, not by 0.32 +- 2.5
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert legend == ["three seeds (n=3)", "two seeds (n=2: a wide band, cut to the plot)"], legend
