"""Statistics over seeds: means with t-based confidence intervals, and honest comparisons.

Each row of the book's tables is one run; seed noise on MNIST is a few
tenths of a percent, as large as many differences between rows. These
functions say how large.
"""

import math

import numpy as np

from mnistlab.core.errors import ConfigError

CONFIDENCE = 0.95


def _student_t_quantile(probability, degrees_of_freedom):
    """Student's t quantile (scipy.stats.t.ppf), from scipy.special: importing scipy.stats costs every CLI process,
    `mnistlab --version` included, three times as long as the rest of its start."""
    from scipy import special

    return float(special.stdtrit(degrees_of_freedom, probability))


def _student_t_two_sided_p(statistic, degrees_of_freedom):
    """The two-sided p-value of a t statistic (what scipy.stats.ttest_ind_from_stats gives), from scipy.special."""
    from scipy import special

    return float(2 * special.stdtr(degrees_of_freedom, -abs(statistic)))


def summarize(values, confidence=CONFIDENCE, bounds=None):
    """Mean, sample standard deviation and two-sided t confidence interval of the mean.

    With fewer than two values the spread is unknown: std and the interval are None.
    `bounds` (low, high): where the quantity can lie (accuracies in %: 0 and 100);
    the interval is cut to them, since a t-interval from few values can reach past.
    """
    values = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    mean = float(values.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = float(values.std(ddof=1))
    half_width = _student_t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    low, high = mean - half_width, mean + half_width
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high}


# Fewer runs than this give an interval too wide to say anything (2 seeds: t = 12.7).
MIN_RUNS_FOR_VERDICT = 3


def inside(value, summary):
    """Whether `value` lies in the summary's interval; None when there is no interval,
    or too few runs (under MIN_RUNS_FOR_VERDICT) for the answer to mean anything."""
    if value is None or summary["ci_low"] is None or summary["n"] < MIN_RUNS_FOR_VERDICT:
        return None
    return summary["ci_low"] <= value <= summary["ci_high"]


def compare(a, b, confidence=CONFIDENCE):
    """Welch's t-test of mean(a) vs mean(b), with Cohen's d and the difference's interval.

    Welch's test does not assume equal variances, which two configurations
    need not have. Returns a dict with a plain-words `verdict`; below
    MIN_RUNS_FOR_VERDICT runs on a side the numbers are given but `significant`
    is None and the verdict says there is none.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(
            f"a comparison needs at least 2 runs on each side (got {len(a)} and {len(b)}); run more seeds"
        )
    return compare_summaries(
        {"n": len(a), "mean": float(a.mean()), "std": float(a.std(ddof=1))},
        {"n": len(b), "mean": float(b.mean()), "std": float(b.std(ddof=1))},
        confidence,
    )


def too_few_to_compare(name_a, name_b, n_a, n_b) -> dict:
    """A pair with fewer than 2 runs on a side: Welch's test cannot be made, and the pair says so."""
    return {"a": name_a, "b": name_b, "n_a": n_a, "n_b": n_b, "p_value": None, "significant": None}


def compare_summaries(a, b, confidence=CONFIDENCE):
    """`compare` from each side's n, mean and sample standard deviation (as `summarize` gives them),
    so that a published table's comparisons can be recomputed from the table alone."""
    if a["n"] < 2 or b["n"] < 2:
        raise ConfigError(
            f"a comparison needs at least 2 runs on each side (got {a['n']} and {b['n']}); run more seeds"
        )
    n_a, n_b = a["n"], b["n"]
    difference = a["mean"] - b["mean"]
    var_a, var_b = a["std"] ** 2, b["std"] ** 2
    standard_error = math.sqrt(var_a / n_a + var_b / n_b)
    pooled_std = math.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / (n_a + n_b - 2))
    if standard_error == 0:
        # Identical runs on both sides (e.g. deterministic repeats).
        p_value = 1.0 if difference == 0 else 0.0
        dof = float(n_a + n_b - 2)
        half_width = 0.0
    else:
        # Welch's t-test: unequal variances, Welch-Satterthwaite degrees of freedom.
        dof = (var_a / n_a + var_b / n_b) ** 2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1))
        p_value = _student_t_two_sided_p(difference / standard_error, dof)
        half_width = _student_t_quantile(0.5 + confidence / 2, dof) * standard_error
    if pooled_std > 0:
        cohens_d = difference / pooled_std
    else:  # no spread at all: any difference is infinitely many standard deviations
        cohens_d = math.copysign(math.inf, difference) if difference else 0.0
    enough = min(n_a, n_b) >= MIN_RUNS_FOR_VERDICT
    significant = bool(p_value < 1 - confidence) if enough else None
    if not enough:
        verdict = f"no verdict: {n_a} and {n_b} runs, and a verdict needs at least {MIN_RUNS_FOR_VERDICT} on each side (p = {p_value:.3g}; effect size d = {cohens_d:.2f})"
    else:
        verdict = (
            f"the difference is {'significant' if significant else 'not significant'} at {confidence:.0%} "
            f"(p = {p_value:.3g}; effect size d = {cohens_d:.2f}, {effect_size_words(cohens_d)})"
        )
    return {
        "test": "Welch's t-test (two-sided)",
        "n_a": n_a,
        "n_b": n_b,
        "mean_a": float(a["mean"]),
        "mean_b": float(b["mean"]),
        "difference": float(difference),
        "ci_low": difference - half_width,
        "ci_high": difference + half_width,
        "degrees_of_freedom": float(dof),
        "p_value": p_value,
        "cohens_d": float(cohens_d)
        if math.isfinite(cohens_d)
        else None,  # JSON has no Infinity: no spread at all, as the verdict says
        "significant": significant,
        "confidence": confidence,
        "verdict": verdict,
    }


def effect_size_words(d):
    """Cohen's conventional labels for |d|."""
    d = abs(d)
    if d < 0.2:
        return "negligible"
    if d < 0.5:
        return "small"
    if d < 0.8:
        return "medium"
    return "large"


PERCENT = (0.0, 100.0)  # accuracies in %: an interval never leaves these
