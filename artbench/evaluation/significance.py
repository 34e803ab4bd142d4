"""Statistics layer of ``artbench compare``: pure functions over numpy arrays (no I/O).

* Over seeds: paired / Welch t-test, Wilcoxon signed-rank / Mann-Whitney U, bootstrap CI of the mean difference,
  and Almost Stochastic Order (Dror, Shlomov & Reichart, ACL 2019).
* Over test images: McNemar's test (McNemar 1947; Dietterich 1998) and a vectorised paired bootstrap of
  accuracy / macro-F1 (Efron & Tibshirani 1993; Koehn 2004; Berg-Kirkpatrick et al. 2012).
* Over targets / datasets: Friedman test with Nemenyi post-hoc (Demšar 2006), Holm's step-down correction
  (Holm 1979), Pearson / Spearman correlation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import scikit_posthocs
from numpy.typing import ArrayLike
from scipy import stats

#: Largest sample for which the rank tests use their exact null distribution (when there are no ties).
EXACT_MAX = 50
#: Discordant-pair count from which McNemar's test uses the chi-square approximation instead of the binomial.
MCNEMAR_EXACT_BELOW = 25

RngLike = np.random.Generator | int | None
ResampledMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _scores(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a 1-D array of finite values")
    return array


def _test(
    name: str, method: str, statistic: float, p: float, min_p: float, alpha: float, note: str | None
) -> dict[str, Any]:
    return {
        "test": name,
        "method": method,
        "statistic": float(statistic),
        "p": float(p),
        "min_p": float(min_p),
        "can_reach": bool(min_p <= alpha),
        "note": note,
    }


def _t_test(a: np.ndarray, b: np.ndarray, paired: bool, alpha: float) -> dict[str, Any]:
    """Student's paired t-test or Welch's unequal-variance t-test; ``min_p`` is 0 (p → 0 as |t| → ∞)."""
    name = "paired t-test" if paired else "Welch t-test"
    if min(len(a), len(b)) < 2:
        return _test(name, "t", np.nan, np.nan, np.nan, alpha, "needs at least 2 seeds per method")
    spread = np.ptp(a - b) if paired else max(np.ptp(a), np.ptp(b))
    scale = max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    if spread <= 1e-12 * scale:  # rounding noise of identical seeds: SciPy would warn of catastrophic cancellation
        what = "the differences" if paired else "both samples"
        return _test(name, "t", np.nan, np.nan, 0.0, alpha, f"{what} have zero variance")
    res = stats.ttest_rel(a, b) if paired else stats.ttest_ind(a, b, equal_var=False)
    return _test(name, "t", res.statistic, res.pvalue, 0.0, alpha, None)


def _wilcoxon(a: np.ndarray, b: np.ndarray, alpha: float) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank test; zero differences are dropped (Wilcoxon's convention).

    Exact null distribution when the non-zero |differences| are untied and at most ``EXACT_MAX``, else the normal
    approximation. ``min_p`` = 2 / 2**n for n pairs: the exact test's p when all differences share one sign.
    """
    name, n = "Wilcoxon signed-rank", len(a)
    min_p = min(1.0, 2.0 / 2.0**n) if n else np.nan
    if n < 2:
        return _test(name, "exact", np.nan, np.nan, min_p, alpha, "needs at least 2 paired seeds")
    d = (a - b)[a != b]
    if len(d) == 0:
        return _test(name, "exact", np.nan, np.nan, min_p, alpha, "all differences are zero")
    method = "exact" if len(d) <= EXACT_MAX and len(np.unique(np.abs(d))) == len(d) else "asymptotic"
    res = stats.wilcoxon(d, alternative="two-sided", method=method)
    note = f"{n - len(d)} zero difference(s) dropped" if len(d) < n else None
    return _test(name, method, res.statistic, res.pvalue, min_p, alpha, note)


def _mann_whitney(a: np.ndarray, b: np.ndarray, alpha: float) -> dict[str, Any]:
    """Two-sided Mann-Whitney U test; ``min_p`` = 2 / C(n1 + n2, n1), the exact test's p at complete separation."""
    name, n1, n2 = "Mann-Whitney U", len(a), len(b)
    min_p = min(1.0, 2.0 / math.comb(n1 + n2, n1))
    if min(n1, n2) < 2:
        return _test(name, "exact", np.nan, np.nan, min_p, alpha, "needs at least 2 seeds per method")
    pooled = np.concatenate([a, b])
    if np.ptp(pooled) == 0:
        return _test(name, "exact", np.nan, np.nan, min_p, alpha, "all values are equal")
    untied = len(np.unique(pooled)) == len(pooled)
    method = "exact" if untied and max(n1, n2) <= EXACT_MAX else "asymptotic"
    res = stats.mannwhitneyu(a, b, alternative="two-sided", method=method)
    return _test(name, method, res.statistic, res.pvalue, min_p, alpha, None)


def _boot_means(x: np.ndarray, resamples: int, gen: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` bootstrap samples of ``x`` (drawn with replacement, all at once)."""
    return x[gen.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    low, high = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def seed_tests(
    a: ArrayLike,
    b: ArrayLike,
    paired: bool,
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    resamples: int = 10_000,
    rng: RngLike = 0,
) -> dict[str, Any]:
    """Compare per-seed metric values of method ``a`` with baseline ``b``.

    ``paired`` (seed i of both runs shares data split / initialisation): paired t-test and Wilcoxon signed-rank;
    otherwise Welch's t-test and Mann-Whitney U. Each test reports ``statistic``, two-sided ``p``, ``min_p`` (the
    smallest p the test can attain with this many seeds), ``can_reach`` (``min_p <= alpha``) and ``note`` (why ``p``
    is NaN for degenerate input, e.g. fewer than 2 seeds or all differences zero). ``ci_low``/``ci_high``: percentile
    bootstrap CI of ``diff`` = mean(a) - mean(b), resampling pairs (paired) or each sample separately.
    """
    a, b = _scores(a, "a"), _scores(b, "b")
    if paired and len(a) != len(b):
        raise ValueError(f"paired tests need equally many seeds, got {len(a)} and {len(b)}")
    rank_test = _wilcoxon(a, b, alpha) if paired else _mann_whitney(a, b, alpha)
    ci = (np.nan, np.nan)
    if min(len(a), len(b)) >= 2:
        gen = np.random.default_rng(rng)
        if paired:
            boot = _boot_means(a - b, resamples, gen)
        else:
            boot = _boot_means(a, resamples, gen) - _boot_means(b, resamples, gen)
        ci = _percentile_ci(boot, confidence)
    return {
        "paired": paired,
        "n_a": len(a),
        "n_b": len(b),
        "mean_a": float(a.mean()) if len(a) else np.nan,
        "mean_b": float(b.mean()) if len(b) else np.nan,
        "std_a": float(a.std(ddof=1)) if len(a) > 1 else np.nan,
        "std_b": float(b.std(ddof=1)) if len(b) > 1 else np.nan,
        "diff": float(a.mean() - b.mean()) if len(a) and len(b) else np.nan,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "confidence": confidence,
        "t_test": _t_test(a, b, paired, alpha),
        "rank_test": rank_test,
    }


def mcnemar(correct_a: ArrayLike, correct_b: ArrayLike) -> dict[str, Any]:
    """McNemar's test on per-image correctness of two classifiers on the same test images (Dietterich 1998).

    With n01 = #(A right, B wrong) and n10 = #(A wrong, B right): exact two-sided binomial test of n01 ~ B(n01 + n10,
    1/2) when n01 + n10 < 25 (statistic min(n01, n10)), otherwise chi² = (|n01 - n10| - 1)² / (n01 + n10) with
    Edwards' continuity correction and 1 degree of freedom; as ``statsmodels.stats.contingency_tables.mcnemar``.
    """
    ca, cb = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if ca.shape != cb.shape or ca.ndim != 1:
        raise ValueError("correct_a and correct_b must be 1-D arrays of the same length")
    n01, n10 = int(np.sum(ca & ~cb)), int(np.sum(~ca & cb))
    discordant = n01 + n10
    if discordant < MCNEMAR_EXACT_BELOW:
        method, statistic = "exact", float(min(n01, n10))
        p = min(1.0, 2.0 * stats.binom.cdf(statistic, discordant, 0.5))
    else:
        method, statistic = "chi2", (abs(n01 - n10) - 1) ** 2 / discordant
        p = stats.chi2.sf(statistic, 1)
    return {
        "n": len(ca),
        "accuracy_a": float(ca.mean()) if len(ca) else np.nan,
        "accuracy_b": float(cb.mean()) if len(cb) else np.nan,
        "a_only": n01,
        "b_only": n10,
        "method": method,
        "statistic": float(statistic),
        "p": float(p),
    }


def bootstrap_counts(n: int, resamples: int, rng: RngLike = 0) -> np.ndarray:
    """Bootstrap resample-count matrix ``W`` [resamples, n]: ``W[r, i]`` = times image i is drawn in resample r.

    Each row is Multinomial(n, 1/n, ..., 1/n), built by drawing n indices with replacement and counting them
    (``bincount`` over row blocks, faster than ``Generator.multinomial``). float32 so that statistics become BLAS
    matmuls; the counts and their sums over images stay exact integers for n < 2**24.
    """
    gen = np.random.default_rng(rng)
    counts = np.empty((resamples, n), dtype=np.float32)
    block = max(1, 2**18 // max(n, 1))
    offsets = np.arange(block, dtype=np.int64)[:, None] * n
    dtype = np.min_scalar_type(max(n - 1, 0))
    for start in range(0, resamples, block):
        rows = min(block, resamples - start)
        drawn = gen.integers(0, n, size=(rows, n), dtype=dtype) + offsets[:rows]
        counts[start : start + rows] = np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n)
    return counts


def _systems(y_pred: ArrayLike, n: int) -> np.ndarray:
    stacked = np.atleast_2d(np.asarray(y_pred))
    if stacked.ndim != 2 or stacked.shape[1] != n:
        raise ValueError(f"y_pred must have shape [n] or [systems, n] with n = {n}")
    return stacked


def accuracy_resampled(weights: np.ndarray, y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Overall accuracy per resample: Σ_i W[r, i]·[ŷ_i = y_i] / Σ_i W[r, i].

    ``y_pred`` of shape [n] gives [R]; stacked systems [S, n] give [S, R] from one matmul.
    """
    y_true = np.asarray(y_true)
    preds = _systems(y_pred, len(y_true))
    correct = (preds == y_true).T.astype(weights.dtype)
    acc = (weights @ correct) / weights.sum(axis=1, dtype=np.float64)[:, None]
    return acc.T if np.ndim(y_pred) == 2 else acc[:, 0]


def macro_f1_resampled(
    weights: np.ndarray, y_true: ArrayLike, y_pred: ArrayLike, classes: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Macro-F1 over ``classes`` per resample, from count matrices: TP_k = W @ [y = ŷ = k], P_k = W @ [ŷ = k],
    T_k = W @ [y = k]; F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k) = 2 TP_k / (T_k + P_k), 0 where T_k + P_k = 0.

    ``classes``: the foreground classes present in the unresampled test labels (SilkNet §5.1); the average stays over
    them in every resample. Samples of other labels (background) predicted as class k are false positives of k.
    With ``weights`` = ones([1, n]) this equals ``sklearn.metrics.f1_score(labels=classes, average="macro",
    zero_division=0)``.
    ``y_pred`` of shape [n] gives [R]; stacked systems [S, n] give [S, R] from one matmul.
    """
    y_true = np.asarray(y_true)
    classes = np.asarray(classes)
    preds = _systems(y_pred, len(y_true))
    num_systems, k = len(preds), len(classes)
    predicted = preds[:, :, None] == classes  # [S, n, K]
    hits = predicted & (preds == y_true)[:, :, None]
    columns = np.concatenate(
        [(y_true[:, None] == classes)[None], hits, predicted], axis=0
    )  # [1 + 2S, n, K]: true, TP per system, predicted per system
    design = columns.transpose(1, 0, 2).reshape(len(y_true), -1).astype(weights.dtype)
    counts = (weights @ design).reshape(len(weights), 1 + 2 * num_systems, k).astype(np.float64)
    true, tp, pred = counts[:, :1], counts[:, 1 : 1 + num_systems], counts[:, 1 + num_systems :]
    den = true + pred
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    macro = f1.mean(axis=2).T  # [S, R]
    return macro if np.ndim(y_pred) == 2 else macro[0]


def paired_bootstrap_diff(
    observed_diff: float, stat_a: np.ndarray, stat_b: np.ndarray, *, confidence: float = 0.95
) -> dict[str, float]:
    """Paired bootstrap of a metric difference from both systems' statistics on the same resamples.

    With d*_r = stat_a[r] - stat_b[r] and d = ``observed_diff`` (on the unresampled test set): ``ci_low``/``ci_high``
    are the percentile interval of d*. The two-sided p-value is the share of resampled differences on the other side
    of 0 than d, including 0, doubled and capped at 1: p = min(1, 2·#{r: d*_r ≤ 0} / R) for d > 0,
    p = min(1, 2·#{r: d*_r ≥ 0} / R) for d < 0, p = 1 for d = 0. Its resolution is 2/R; p = 0 means p < 2/R.
    """
    d = np.asarray(stat_a, dtype=float) - np.asarray(stat_b, dtype=float)
    if observed_diff > 0:
        p = min(1.0, 2 * float(np.mean(d <= 0)))
    elif observed_diff < 0:
        p = min(1.0, 2 * float(np.mean(d >= 0)))
    else:
        p = 1.0
    low, high = _percentile_ci(d, confidence)
    return {"diff": float(observed_diff), "ci_low": low, "ci_high": high, "p": p}


def paired_bootstrap(
    metric: ResampledMetric,
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    *,
    weights: np.ndarray | None = None,
    resamples: int = 10_000,
    confidence: float = 0.95,
    rng: RngLike = 0,
) -> dict[str, float]:
    """Paired bootstrap over test images of metric(A) - metric(B), e.g.
    ``paired_bootstrap(partial(macro_f1_resampled, classes=present), y, pred_a, pred_b)``.

    ``metric(weights, y_true, y_pred) -> [R]`` is evaluated on the count matrix ``weights`` (drawn with
    :func:`bootstrap_counts` unless given; pass one to share it between comparisons on the same test set) and on
    ones([1, n]) for the observed difference. See :func:`paired_bootstrap_diff` for the CI and p-value.
    """
    y_true = np.asarray(y_true)
    if weights is None:
        weights = bootstrap_counts(len(y_true), resamples, rng)
    ones = np.ones((1, len(y_true)), dtype=weights.dtype)
    observed = float(metric(ones, y_true, pred_a)[0] - metric(ones, y_true, pred_b)[0])
    return paired_bootstrap_diff(
        observed, metric(weights, y_true, pred_a), metric(weights, y_true, pred_b), confidence=confidence
    )


def bench_bootstrap(
    num_methods: int = 6,
    num_seeds: int = 5,
    num_images: int = 7_000,
    resamples: int = 10_000,
    num_classes: int = 29,
    rng: RngLike = 0,
) -> float:
    """Seconds for the paired bootstrap of accuracy and macro-F1 of every (method, seed) against the baseline
    (method 0) of the same seed, one count matrix shared by all, on synthetic predictions (60 % copied from the
    labels, the rest uniform guesses).

    ``num_classes`` = 29 is SilkNet's largest target (*place*); the matmul cost grows linearly with it.
    """
    gen = np.random.default_rng(rng)
    y_true = gen.integers(0, num_classes, size=num_images)
    guess = gen.integers(0, num_classes, size=(num_methods * num_seeds, num_images))
    preds = np.where(gen.random(guess.shape) < 0.6, y_true, guess)
    classes = np.unique(y_true)
    start = time.perf_counter()
    weights = bootstrap_counts(num_images, resamples, gen)
    ones = np.ones((1, num_images), dtype=weights.dtype)
    for metric in (accuracy_resampled, partial(macro_f1_resampled, classes=classes)):
        resampled, observed = metric(weights, y_true, preds), metric(ones, y_true, preds)[:, 0]
        for system in range(num_seeds, num_methods * num_seeds):
            base = system % num_seeds
            paired_bootstrap_diff(observed[system] - observed[base], resampled[system], resampled[base])
    return time.perf_counter() - start


def _quantile_grid(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intervals of (0, 1] on which both empirical quantile functions F_n⁻¹, G_m⁻¹ are constant.

    Breakpoints are {i/n} ∪ {j/m}, kept as integers in units of 1/lcm(n, m); on (t_{l-1}, t_l] the quantile
    functions take the order statistics of (0-based) index ⌈n t_l⌉ - 1 and ⌈m t_l⌉ - 1.
    """
    lcm = math.lcm(n, m)
    ends = np.union1d(np.arange(1, n + 1) * (lcm // n), np.arange(1, m + 1) * (lcm // m))
    widths = np.diff(ends, prepend=0) / lcm
    return widths, -(-ends // (lcm // n)) - 1, -(-ends // (lcm // m)) - 1


def _violation_ratios(sorted_a: np.ndarray, sorted_b: np.ndarray) -> np.ndarray:
    """ε_W2 of the rows of two sorted sample matrices [B, n], [B, m] (NaN where W2 = 0)."""
    widths, ia, ib = _quantile_grid(sorted_a.shape[-1], sorted_b.shape[-1])
    gap = sorted_a[:, ia] - sorted_b[:, ib]
    sq = widths * gap**2
    total = sq.sum(axis=1)
    violated = np.where(gap < 0, sq, 0.0).sum(axis=1)
    return np.divide(violated, total, out=np.full(len(total), np.nan), where=total > 0)


def violation_ratio(scores_a: ArrayLike, scores_b: ArrayLike) -> float:
    """Plug-in W2 violation ratio ε_W2(F_n, G_m) of Dror et al. (2019, §4; del Barrio et al. 2018).

    ε_W2(F, G) = ∫_{V_X} (F⁻¹(t) - G⁻¹(t))² dt / W2(F, G)², V_X = {t ∈ (0, 1): F⁻¹(t) < G⁻¹(t)},
    W2(F, G)² = ∫_0^1 (F⁻¹(t) - G⁻¹(t))² dt, with F (G) the CDF of A's (B's) scores; integrated exactly for the
    step-function empirical quantiles. 0: A's quantiles are never below B's (A stochastically dominates B);
    1: the reverse; ε(A, B) + ε(B, A) = 1. NaN when the two empirical distributions are equal (W2 = 0).
    """
    a, b = np.sort(_scores(scores_a, "scores_a")), np.sort(_scores(scores_b, "scores_b"))
    return float(_violation_ratios(a[None], b[None])[0])


def aso(
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    confidence: float = 0.95,
    num_bootstrap: int = 1000,
    rng: RngLike = 0,
) -> float:
    """Almost Stochastic Order (Dror, Shlomov & Reichart, ACL 2019, §4): ε_min of A (scores_a) over B (scores_b).

    ε_min(F_n, G_m, α) = ε_W2(F_n, G_m) - sqrt((n + m) / (n m)) · σ̂_{n,m} · Φ⁻¹(α), α = 1 - ``confidence``, is the
    smallest ε for which H0: ε_W2(F, G) ≥ ε is rejected at level α (del Barrio, Cuesta-Albertos & Matrán 2018), i.e.
    a one-sided upper confidence bound on the violation ratio (:func:`violation_ratio`). σ̂²_{n,m} is the bootstrap
    variance of sqrt(n m / (n + m)) · (ε_W2(F*_n, G*_m) - ε_W2(F_n, G_m)), with F*_n, G*_m drawn with replacement from
    each sample (Dror et al. 2019; Ulmer, Hardmeier & Frellsen 2022). Clipped to [0, 1], the range of ε.

    Decision rule: A is almost stochastically larger than B when ε_min < τ; τ = 0.5 is common, τ = 0.2 is the stricter
    choice recommended by Ulmer et al. (2022). ε_min ≈ 0 means A dominates; equal distributions give ε_W2 ≈ 0.5 and
    ε_min above it (no claim); ε_min near 1 suggests B dominates (check with the arguments swapped). NaN when the two
    samples have the same empirical distribution.
    """
    a, b = _scores(scores_a, "scores_a"), _scores(scores_b, "scores_b")
    eps = violation_ratio(a, b)
    if np.isnan(eps):
        return float("nan")
    gen = np.random.default_rng(rng)
    n, m = len(a), len(b)
    block = max(1, 2**20 // (n + m))
    boot = np.empty(num_bootstrap)
    for start in range(0, num_bootstrap, block):
        rows = min(block, num_bootstrap - start)
        boot[start : start + rows] = _violation_ratios(
            np.sort(a[gen.integers(0, n, size=(rows, n))], axis=1),
            np.sort(b[gen.integers(0, m, size=(rows, m))], axis=1),
        )
    # sqrt((n+m)/(nm)) · σ̂ reduces to the bootstrap standard deviation of ε_W2 itself.
    spread = float(np.nanstd(boot, ddof=1))
    return float(np.clip(eps - spread * stats.norm.ppf(1 - confidence), 0.0, 1.0))


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values: p̃_(i) = max_{j ≤ i} min(1, (m - j + 1) p_(j)) over the m finite ones.

    NaN entries are passed through and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = p.copy()
    finite = np.flatnonzero(~np.isnan(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


def correlate(x: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """Pearson's r and Spearman's ρ with two-sided p-values (scipy.stats.pearsonr / spearmanr)."""
    x, y = _scores(x, "x"), _scores(y, "y")
    if len(x) != len(y) or len(x) < 3:
        raise ValueError("correlate needs two samples of equal length >= 3")
    pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
    return {
        "n": len(x),
        "pearson_r": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
    }


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Nemenyi critical value q_α = studentized range quantile (k groups, ∞ df) / sqrt(2) (Demšar 2006, Table 5)."""
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))


def friedman_nemenyi(scores: pd.DataFrame, higher_is_better: bool = True, alpha: float = 0.05) -> dict[str, Any]:
    """Friedman test and Nemenyi post-hoc over ``scores`` (rows: datasets / targets, columns: methods); Demšar 2006.

    Average ranks use rank 1 = best (ties share the mean rank). Friedman χ² and p from
    ``scipy.stats.friedmanchisquare`` (NaN with a ``note`` below 3 methods or when every row is one tie). Critical
    difference CD = q_α sqrt(k (k + 1) / (6 N)) (§3.2.2): two methods differ significantly when their average ranks
    differ by at least CD. ``pairwise_p``: Nemenyi p-values from ``scikit_posthocs.posthoc_nemenyi_friedman``.
    """
    values = scores.to_numpy(dtype=float)
    num_datasets, k = values.shape
    if k < 2 or num_datasets < 1 or np.isnan(values).any():
        raise ValueError("friedman_nemenyi needs >= 2 methods, >= 1 row and no missing scores")
    ranks = stats.rankdata(-values if higher_is_better else values, axis=1)
    avg_ranks = pd.Series(ranks.mean(axis=0), index=scores.columns).sort_values()
    statistic, p, note = np.nan, np.nan, None
    if k < 3:
        note = "Friedman test needs >= 3 methods"
    elif np.all(np.ptp(values, axis=1) == 0):
        note = "all methods tie on every row"
    else:
        statistic, p = stats.friedmanchisquare(*values.T)
    q = nemenyi_q(k, alpha)
    pairwise = scikit_posthocs.posthoc_nemenyi_friedman(pd.DataFrame(values, columns=scores.columns))
    return {
        "n_datasets": num_datasets,
        "n_methods": k,
        "statistic": float(statistic),
        "p": float(p),
        "avg_ranks": avg_ranks.to_dict(),
        "alpha": alpha,
        "q_alpha": q,
        "cd": q * math.sqrt(k * (k + 1) / (6 * num_datasets)),
        "pairwise_p": pairwise,
        "note": note,
    }
