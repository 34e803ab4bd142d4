"""Statistics of `artbench compare` checked against scipy, statsmodels, scikit-learn, scikit-posthocs and papers."""

from __future__ import annotations

from functools import partial

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import integrate, stats
from sklearn.metrics import accuracy_score, f1_score
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from artbench.evaluation import significance as sig
from artbench.evaluation.cd_diagram import nonsignificant_groups, plot_critical_difference

# --- seeds -------------------------------------------------------------------------------------------------------

A5 = np.array([0.62, 0.655, 0.641, 0.67, 0.633])
B5 = np.array([0.60, 0.610, 0.622, 0.63, 0.615])


def test_paired_seed_tests_match_scipy_and_exact_bounds() -> None:
    res = sig.seed_tests(A5, B5, paired=True)
    t = stats.ttest_rel(A5, B5)
    assert res["t_test"]["statistic"] == pytest.approx(t.statistic)
    assert res["t_test"]["p"] == pytest.approx(t.pvalue)
    assert res["t_test"]["min_p"] == 0.0 and res["t_test"]["can_reach"]
    # All five differences positive: the exact two-sided Wilcoxon p is its floor 2 / 2**5 = 0.0625 > 0.05.
    rank = res["rank_test"]
    assert (rank["test"], rank["method"]) == ("Wilcoxon signed-rank", "exact")
    assert rank["p"] == pytest.approx(0.0625) and rank["min_p"] == pytest.approx(0.0625)
    assert not rank["can_reach"] and rank["note"] is None
    assert res["mean_a"] == pytest.approx(A5.mean()) and res["std_a"] == pytest.approx(A5.std(ddof=1))
    assert res["std_b"] == pytest.approx(np.std(B5, ddof=1))
    assert res["diff"] == pytest.approx(A5.mean() - B5.mean())
    ref = stats.bootstrap((A5 - B5,), np.mean, n_resamples=10_000, method="percentile", rng=1).confidence_interval
    width = ref.high - ref.low
    assert res["ci_low"] == pytest.approx(ref.low, abs=0.03 * width)
    assert res["ci_high"] == pytest.approx(ref.high, abs=0.03 * width)
    assert sig.seed_tests(A5, B5, paired=True) == res  # seeded generator: reproducible
    six = sig.seed_tests(np.r_[A5, 0.66], np.r_[B5, 0.63], paired=True)["rank_test"]
    assert six["min_p"] == pytest.approx(0.03125) and six["can_reach"] and six["p"] == pytest.approx(0.03125)
    mixed = sig.seed_tests([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 1.5, 3.0, 3.0, 4.5], paired=True)["rank_test"]
    assert mixed["p"] == pytest.approx(stats.wilcoxon([-1.0, 0.5, 1.0, 0.5], method="asymptotic").pvalue)
    assert mixed["method"] == "asymptotic" and mixed["note"] == "1 zero difference(s) dropped"


def test_unpaired_seed_tests_match_scipy() -> None:
    a, b = np.array([0.71, 0.69, 0.74, 0.70, 0.73]), np.array([0.66, 0.68, 0.65, 0.67, 0.64, 0.685])
    res = sig.seed_tests(a, b, paired=False)
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert res["t_test"]["test"] == "Welch t-test"
    assert res["t_test"]["statistic"] == pytest.approx(welch.statistic)
    assert res["t_test"]["p"] == pytest.approx(welch.pvalue)
    rank = res["rank_test"]
    assert (rank["test"], rank["method"]) == ("Mann-Whitney U", "exact")
    assert rank["statistic"] == 30.0  # complete separation: U = n1 n2
    assert rank["p"] == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue)
    assert rank["min_p"] == pytest.approx(2 / 462) and rank["p"] == pytest.approx(rank["min_p"])
    assert rank["can_reach"]
    three = sig.seed_tests(a[:3], b[:3], paired=False)["rank_test"]
    assert three["min_p"] == pytest.approx(0.1) and not three["can_reach"]  # 2 / C(6, 3)
    ref = stats.bootstrap(
        (a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), n_resamples=10_000, method="percentile", rng=1
    ).confidence_interval
    width = ref.high - ref.low
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ref.low, ref.high), abs=0.05 * width)
    assert res["ci_low"] < res["diff"] < res["ci_high"] and res["ci_low"] > 0


def test_seed_tests_degenerate_inputs_give_nan_with_note() -> None:
    same = sig.seed_tests(A5, A5, paired=True)
    assert np.isnan(same["t_test"]["p"]) and same["t_test"]["note"] == "the differences have zero variance"
    assert np.isnan(same["rank_test"]["p"]) and same["rank_test"]["note"] == "all differences are zero"
    assert same["diff"] == 0.0
    single = sig.seed_tests([0.7], [0.6], paired=True)
    assert np.isnan(single["t_test"]["p"]) and "at least 2" in single["t_test"]["note"]
    assert np.isnan(single["rank_test"]["p"]) and np.isnan(single["ci_low"]) and np.isnan(single["std_a"])
    flat = sig.seed_tests([0.5, 0.5, 0.5], [0.5, 0.5], paired=False)
    assert np.isnan(flat["t_test"]["p"]) and flat["rank_test"]["note"] == "all values are equal"
    with pytest.raises(ValueError, match="equally many"):
        sig.seed_tests(A5, B5[:4], paired=True)
    with pytest.raises(ValueError, match="finite"):
        sig.seed_tests([0.5, np.nan], [0.5, 0.4], paired=False)


# --- McNemar -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flip_a", "flip_b", "method"), [(0.04, 0.02, "exact"), (0.15, 0.10, "chi2")])
def test_mcnemar_matches_statsmodels(flip_a: float, flip_b: float, method: str) -> None:
    gen = np.random.default_rng(3)
    base = gen.random(300) < 0.7
    ca, cb = base ^ (gen.random(300) < flip_a), base ^ (gen.random(300) < flip_b)
    res = sig.mcnemar(ca, cb)
    table = [[np.sum(ca & cb), np.sum(ca & ~cb)], [np.sum(~ca & cb), np.sum(~ca & ~cb)]]
    ref = sm_mcnemar(table, exact=method == "exact", correction=True)
    assert res["method"] == method and (res["a_only"] + res["b_only"] < 25) == (method == "exact")
    assert res["statistic"] == pytest.approx(ref.statistic)
    assert res["p"] == pytest.approx(ref.pvalue)
    assert res["accuracy_a"] == pytest.approx(ca.mean())


# --- paired bootstrap over test images ---------------------------------------------------------------------------


def _labels(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels 0..5 with 6 = background; class 5 never predicted, 6 predicted too (a false positive for nobody)."""
    gen = np.random.default_rng(seed)
    y = gen.choice(7, size=n, p=[0.3, 0.2, 0.15, 0.1, 0.05, 0.05, 0.15])
    guess = gen.integers(0, 5, size=(2, n))
    guess[:, :10] = 6
    preds = np.where(gen.random((2, n)) < 0.6, y, guess)
    preds[preds == 5] = 0
    return y, preds, np.unique(y[y < 6])


def test_bootstrap_counts_are_multinomial_rows() -> None:
    w = sig.bootstrap_counts(1000, 300, rng=5)
    assert w.shape == (300, 1000) and w.dtype == np.float32
    assert np.all(w.sum(axis=1) == 1000) and np.all(w == np.round(w)) and w.min() >= 0
    assert w.mean() == 1.0 and np.mean(w == 0) == pytest.approx((1 - 1 / 1000) ** 1000, abs=0.01)
    assert np.array_equal(w, sig.bootstrap_counts(1000, 300, rng=5))


def test_macro_f1_and_accuracy_match_sklearn_on_data_and_resamples() -> None:
    y, preds, classes = _labels(400)
    assert list(classes) == [0, 1, 2, 3, 4, 5]
    ones = np.ones((1, len(y)), dtype=np.float32)
    for pred in preds:
        ref = f1_score(y, pred, labels=classes, average="macro", zero_division=0)
        assert sig.macro_f1_resampled(ones, y, pred, classes) == pytest.approx([ref])
        assert sig.accuracy_resampled(ones, y, pred) == pytest.approx([accuracy_score(y, pred)])
    w = sig.bootstrap_counts(len(y), 40, rng=2)
    f1, acc = sig.macro_f1_resampled(w, y, preds, classes), sig.accuracy_resampled(w, y, preds)
    assert f1.shape == acc.shape == (2, 40)
    assert np.allclose(f1[1], sig.macro_f1_resampled(w, y, preds[1], classes))
    for r in (0, 17, 39):
        for s, pred in enumerate(preds):
            weight = w[r].astype(float)
            ref = f1_score(y, pred, labels=classes, average="macro", zero_division=0, sample_weight=weight)
            assert f1[s, r] == pytest.approx(ref, abs=1e-12)
            assert acc[s, r] == pytest.approx(accuracy_score(y, pred, sample_weight=weight), abs=1e-12)


def test_paired_bootstrap_diff_definition() -> None:
    stat_b = np.zeros(10)
    stat_a = np.array([-0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    res = sig.paired_bootstrap_diff(0.25, stat_a, stat_b, confidence=0.8)
    assert res["diff"] == 0.25 and res["p"] == pytest.approx(0.6)  # 3 of 10 at or below 0, doubled
    assert (res["ci_low"], res["ci_high"]) == pytest.approx(tuple(np.quantile(stat_a, [0.1, 0.9])))
    assert sig.paired_bootstrap_diff(-0.1, stat_a, stat_b)["p"] == 1.0  # 8 of 10 at or above 0 → capped
    assert sig.paired_bootstrap_diff(0.0, stat_a, stat_b)["p"] == 1.0
    assert sig.paired_bootstrap_diff(0.5, stat_a + 1, stat_b)["p"] == 0.0


def test_paired_bootstrap_spread_matches_analytic_variance() -> None:
    y, preds, classes = _labels(2000, seed=1)
    res = sig.paired_bootstrap(sig.accuracy_resampled, y, preds[0], preds[1], resamples=4000, rng=7)
    d = (preds[0] == y).astype(float) - (preds[1] == y)
    assert res["diff"] == pytest.approx(d.mean())
    # Percentile CI of a mean over images ≈ d̄ ± 1.96 sqrt(Var_pop(d) / n).
    half = 1.96 * d.std() / np.sqrt(len(d))
    assert res["ci_high"] - res["ci_low"] == pytest.approx(2 * half, rel=0.1)
    assert res["ci_low"] < res["diff"] < res["ci_high"]
    z_p = 2 * stats.norm.sf(abs(d.mean()) / (d.std() / np.sqrt(len(d))))
    assert res["p"] == pytest.approx(z_p, abs=0.03)
    f1 = sig.paired_bootstrap(partial(sig.macro_f1_resampled, classes=classes), y, preds[0], preds[0], resamples=50)
    assert (f1["diff"], f1["ci_low"], f1["ci_high"], f1["p"]) == (0.0, 0.0, 0.0, 1.0)


def test_bench_bootstrap_runs_on_a_small_setting() -> None:
    assert 0 < sig.bench_bootstrap(num_methods=2, num_seeds=2, num_images=300, resamples=50, num_classes=5) < 5


# --- Almost Stochastic Order -------------------------------------------------------------------------------------


def _exact_violation_ratio(mu_a: float, sd_a: float, mu_b: float, sd_b: float) -> float:
    """ε_W2 of N(mu_a, sd_a²) over N(mu_b, sd_b²) by numerical integration of the exact quantile functions."""

    def gap(t: float) -> float:
        z = stats.norm.ppf(t)
        return (mu_a + sd_a * z) - (mu_b + sd_b * z)

    violated = integrate.quad(lambda t: min(gap(t), 0.0) ** 2, 0, 1, limit=200)[0]
    return violated / integrate.quad(lambda t: gap(t) ** 2, 0, 1, limit=200)[0]


def test_violation_ratio_matches_exact_normal_quantiles() -> None:
    exact = _exact_violation_ratio(0.5, 1.0, 0.0, 2.0)
    assert exact == pytest.approx(0.16771, abs=1e-5)
    n = 20_000
    z = stats.norm.ppf((np.arange(n) + 0.5) / n)
    assert sig.violation_ratio(0.5 + z, 2 * z) == pytest.approx(exact, abs=1e-3)
    gen = np.random.default_rng(0)
    assert sig.violation_ratio(gen.normal(0.5, 1, n), gen.normal(0, 2, n)) == pytest.approx(exact, abs=0.02)
    # Equal variances: F⁻¹ - G⁻¹ = 0.5 everywhere, so the exact ratio is 0; equal means: 0.5 by symmetry.
    assert _exact_violation_ratio(0.5, 1.0, 0.0, 1.0) == 0.0
    assert sig.violation_ratio(gen.normal(0.5, 1, 5000), gen.normal(0, 1, 5000)) < 0.01
    assert _exact_violation_ratio(0.0, 1.0, 0.0, 2.0) == pytest.approx(0.5, abs=1e-6)
    assert sig.violation_ratio(z, 2 * z) == pytest.approx(0.5, abs=1e-9)


def test_violation_ratio_integrates_step_quantiles_exactly_for_unequal_sizes() -> None:
    gen = np.random.default_rng(4)
    a, b = gen.normal(0.3, 1, 7), gen.normal(0, 1.5, 5)
    t = (np.arange(350_000) + 0.5) / 350_000  # 35 = lcm(7, 5): every grid cell lies inside one step of both
    gap = np.sort(a)[np.ceil(7 * t).astype(int) - 1] - np.sort(b)[np.ceil(5 * t).astype(int) - 1]
    brute = np.sum(np.minimum(gap, 0) ** 2) / np.sum(gap**2)
    assert sig.violation_ratio(a, b) == pytest.approx(brute, rel=1e-9)
    assert sig.violation_ratio(a, b) + sig.violation_ratio(b, a) == pytest.approx(1.0)
    assert np.isnan(sig.violation_ratio(a, a))


def test_aso_upper_bound_dominance_and_null_behaviour() -> None:
    gen = np.random.default_rng(0)
    exact = _exact_violation_ratio(0.5, 1.0, 0.0, 2.0)
    bounds = [sig.aso(gen.normal(0.5, 1, 200), gen.normal(0, 2, 200), num_bootstrap=300, rng=gen) for _ in range(60)]
    assert np.mean(np.array(bounds) >= exact) >= 0.85  # one-sided 95 % upper confidence bound
    a, b = gen.normal(0.5, 1, 200), gen.normal(0, 2, 200)
    assert sig.aso(a, b, rng=1) > sig.violation_ratio(a, b)
    assert sig.aso(a, b, rng=1) == sig.aso(a, b, rng=1)
    assert sig.aso(a, b, confidence=0.99, rng=1) > sig.aso(a, b, confidence=0.9, rng=1)
    # A clearly better (N(2, 1) vs N(0, 1), ten seeds each): ε_min ≈ 0, and ≈ 1 with the roles swapped.
    good, base = gen.normal(2, 1, 10), gen.normal(0, 1, 10)
    assert sig.aso(good, base) < 0.1 and sig.aso(base, good) > 0.9
    # Same distribution: the plug-in ratio is symmetric around 0.5; ε_min rarely supports a claim.
    plug_in = [sig.violation_ratio(gen.normal(size=100), gen.normal(size=100)) for _ in range(400)]
    assert np.mean(plug_in) == pytest.approx(0.5, abs=0.06)
    null = np.array([sig.aso(gen.normal(size=10), gen.normal(size=10), num_bootstrap=300, rng=gen) for _ in range(40)])
    assert np.median(null) >= 0.5 and np.mean(null < 0.2) <= 0.1


# --- multiple testing, correlation -------------------------------------------------------------------------------


def test_holm_matches_statsmodels_and_keeps_nan() -> None:
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.2, 0.004, np.nan, 0.04])
    adjusted = sig.holm(p)
    finite = ~np.isnan(p)
    assert np.array_equal(np.isnan(adjusted), ~finite)
    assert np.allclose(adjusted[finite], multipletests(p[finite], method="holm")[1])
    gen = np.random.default_rng(0)
    q = gen.random(30) ** 3
    assert np.allclose(sig.holm(q), multipletests(q, method="holm")[1])
    assert sig.holm([]).shape == (0,)


# Dorozynski 2023 (SilkNet), Table 5: F1 [%] per target; §4: labelled share [%] of the 48,912 images.
TARGETS = ("depiction", "place", "material", "time", "technique")
F1_MTL = (27.2, 15.4, 38.0, 31.6, 30.6)
F1_MTL_FO = (26.5, 19.6, 46.8, 38.4, 31.8)
F1_MTL_FO_RALL = (27.8, 21.3, 46.9, 38.7, 33.3)
LABELLED = (7.0, 73.1, 72.3, 58.0, 32.7)


def test_correlate_reproduces_silknet_section_5_2() -> None:
    gain = np.subtract(F1_MTL_FO_RALL, F1_MTL)
    res = sig.correlate(gain, LABELLED)
    # §5.2: "a significant correlation ... of 93% (p-value: 0.02)".
    assert (round(res["pearson_r"], 3), round(res["pearson_p"], 3)) == (0.927, 0.024)
    ref = stats.spearmanr(gain, LABELLED)
    assert (res["spearman_rho"], res["spearman_p"]) == pytest.approx((ref.statistic, ref.pvalue))
    assert res["spearman_rho"] == pytest.approx(0.7)
    # §5.2: focal training alone "87% correlation, p-value: 0.06".
    focal = sig.correlate(np.subtract(F1_MTL_FO, F1_MTL), LABELLED)
    assert (round(focal["pearson_r"], 2), round(focal["pearson_p"], 2)) == (0.87, 0.06)


# --- Friedman / Nemenyi, CD diagram ------------------------------------------------------------------------------

DEMSAR_Q05 = (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164)  # Demšar 2006, Table 5(a), k = 2..10


def test_nemenyi_critical_values_match_demsar() -> None:
    assert [sig.nemenyi_q(k) for k in range(2, 11)] == pytest.approx(DEMSAR_Q05, abs=1e-3)
    # §3.2.4: four classifiers on 14 data sets, CD = 2.569 sqrt(4·5 / (6·14)) = 1.25.
    scores = pd.DataFrame(np.random.default_rng(0).random((14, 4)))
    assert round(sig.friedman_nemenyi(scores)["cd"], 2) == 1.25


def test_friedman_nemenyi_against_scipy_formula_and_scikit_posthocs() -> None:
    gen = np.random.default_rng(2)
    scores = pd.DataFrame(
        gen.random((12, 5)) + np.array([0.0, 0.1, 0.3, 0.5, 0.6]), columns=["m1", "m2", "m3", "m4", "m5"]
    )
    res = sig.friedman_nemenyi(scores)
    n, k = scores.shape
    ranks = stats.rankdata(-scores.to_numpy(), axis=1).mean(axis=0)  # continuous scores: no ties
    assert res["avg_ranks"] == pytest.approx(dict(zip(scores.columns, ranks, strict=True)))
    assert list(res["avg_ranks"]) == sorted(res["avg_ranks"], key=res["avg_ranks"].get)
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks**2) - k * (k + 1) ** 2 / 4)  # Demšar 2006, §3.2.2
    assert res["statistic"] == pytest.approx(chi2)
    assert res["p"] == pytest.approx(stats.chi2.sf(chi2, k - 1)) and res["p"] < 0.01
    assert res["cd"] == pytest.approx(sig.nemenyi_q(5) * np.sqrt(k * (k + 1) / (6 * n)))
    ref = scikit_posthocs.posthoc_nemenyi_friedman(scores)
    pd.testing.assert_frame_equal(res["pairwise_p"], ref)
    gaps = np.abs(ranks[:, None] - ranks[None, :])
    assert np.array_equal(res["pairwise_p"].to_numpy() <= 0.05, gaps >= res["cd"])
    lower = sig.friedman_nemenyi(-scores, higher_is_better=False)
    assert lower["avg_ranks"] == pytest.approx(res["avg_ranks"])
    two = sig.friedman_nemenyi(scores[["m1", "m2"]])
    assert np.isnan(two["p"]) and two["note"] == "Friedman test needs >= 3 methods"


def test_nonsignificant_groups() -> None:
    ranks = {"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2, "e": 3.9}
    assert nonsignificant_groups(ranks, 1.0) == [("a", "b"), ("c", "d", "e")]
    assert nonsignificant_groups(ranks, 1.6) == [("a", "b"), ("b", "c"), ("c", "d", "e")]
    assert nonsignificant_groups(ranks, 10.0) == [("a", "b", "c", "d", "e")]
    assert nonsignificant_groups(ranks, 0.1) == []
    assert nonsignificant_groups({"a": 1.0, "b": 2.0}, 1.0) == []  # a gap of exactly CD is significant


def test_plot_critical_difference_writes_png(tmp_path) -> None:
    names = [f"method {i}" for i in range(10)]
    ranks = dict(zip(names, np.linspace(1.4, 9.1, 10), strict=True))
    path = plot_critical_difference(ranks, 2.2, tmp_path / "cd.png", "ten methods")
    assert path == tmp_path / "cd.png" and path.stat().st_size > 10_000
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 150 and image.shape[1] > 500 and image[..., :3].std() > 0.05


def test_identical_seeds_up_to_rounding_count_as_zero_variance() -> None:
    """A deterministic method gives the same value for every seed, up to float rounding of its mean."""
    import warnings

    seed_tests = sig.seed_tests
    a = np.array([0.3, 0.3 + 1e-17, 0.3 - 1e-17])
    b = np.array([0.31, 0.30, 0.32])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = seed_tests(np.full(3, 0.3) + np.array([0, 5e-17, 0]), a, paired=False)
    assert np.isnan(result["t_test"]["p"]) and "zero variance" in result["t_test"]["note"]
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert seed_tests(a, b, paired=False)["t_test"]["p"] == pytest.approx(expected)
