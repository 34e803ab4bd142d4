"""``artbench evaluate`` and ``artbench compare``: the commands and their Rich tables (issue 11)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from artbench.cli.common import OutOpt, PluginOpt, load_plugins, out, split_names
from artbench.core.errors import ArtbenchError

EVALUATE_EPILOG = (
    "Examples:\n\n  artbench evaluate silknow-synth my-predictions.csv\n\n"
    "  artbench evaluate silknow-synth artbench-out/silknow-synth/mtl/RUN/seed-1/predictions.csv "
    "--scores artbench-out/silknow-synth/mtl/RUN/seed-1/scores.npz --json"
)
COMPARE_EPILOG = (
    "Examples:\n\n  artbench compare silknow-synth mtl mtl_fo mtl_fo_rall\n\n"
    "  artbench compare silknow-synth mtl_fo_rall --baseline mtl --reported baselines/silknet.toml "
    "--correlate labelled_fraction\n\n"
    "  artbench compare silknow-synth artbench-out/silknow-synth/mtl/RUN-A artbench-out/silknow-synth/mtl/RUN-B "
    "--metric f1_macro --json"
)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _score(value: Any, metric: str, signed: bool = False) -> str:
    """A metric value as in ``artbench run``: percent for scores, plain for errors (MAE); ``–`` when undefined."""
    from artbench.evaluation.metrics import METRICS

    if not _finite(value):
        return "–"
    scale = 100 if METRICS.get(metric).higher_is_better else 1
    return f"{scale * value:{'+' if signed else ''}.1f}"


def _mean_std(entry: Mapping[str, Any], metric: str) -> str:
    mean = _score(entry["mean"], metric)
    return mean if not _finite(entry["std"]) else f"{mean} ± {_score(entry['std'], metric)}"


def _interval(low: Any, high: Any, metric: str) -> str:
    if not (_finite(low) and _finite(high)):
        return "–"
    return f"[{_score(low, metric, True)}, {_score(high, metric, True)}]"


def _p(test: Mapping[str, Any] | None, alpha: float, floor_mark: bool = False) -> str:
    """Holm-adjusted p with significance marks; ``†`` where the test cannot reach α with these seeds; ``~0`` where no
    bootstrap resample crossed zero."""
    if not test or not _finite(test.get("p_holm")):
        return "–"
    p = test["p_holm"]
    mark = "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < alpha else ""
    dagger = "†" if floor_mark and not test.get("can_reach", True) else ""
    shown = "~0" if p == 0 and test.get("resamples") else f"{p:.3g}"
    return f"{shown}{mark}{dagger}"


def _significant(row: Mapping[str, Any], alpha: float) -> bool:
    tests = [row["t_test"], row["rank_test"], row["bootstrap"] or {}]
    return any(_finite(t.get("p_holm")) and t["p_holm"] < alpha for t in tests)


def _delta(row: Mapping[str, Any], alpha: float) -> str:
    text = _score(row["diff"], row["metric"], signed=True)
    if not _finite(row["diff"]) or row["diff"] == 0 or not _significant(row, alpha):
        return text
    better = (row["diff"] > 0) == row["higher_is_better"]
    return f"[{'green' if better else 'red'}]{text}[/]"


def _floor_notes(result: Mapping[str, Any]) -> list[str]:
    """One sentence per rank test and seed count whose smallest attainable p is above α."""
    notes = {}
    for row in result["rows"]:
        test = row["rank_test"]
        if not test["can_reach"] and _finite(test["min_p"]):
            seeds = f"{row['n_a']} paired seeds" if row["paired"] else f"{row['n_a']} and {row['n_b']} seeds"
            notes[(test["test"], seeds)] = (
                f"† with {seeds} the two-sided {test['test']} test cannot go below p = {test['min_p']:.4g}, so it "
                f"cannot show a difference at α = {result['alpha']:g} (not evidence of no difference)"
            )
    return list(notes.values())


def _caption(result: Mapping[str, Any]) -> str:
    """What the metric tables show and which tests made their p-values."""
    alpha = result["alpha"]
    paired = {row["method"]: row["paired"] for row in result["rows"]}
    tests = "; ".join(
        f"{label}: {'paired t-test, Wilcoxon signed-rank' if is_paired else 'Welch t-test, Mann-Whitney U'}"
        for label, is_paired in paired.items()
    )
    resampled = {row["metric"] for row in result["rows"] if row["bootstrap"]}
    if result["resamples"]:
        images = f"paired bootstrap of the seed-mean metric ({result['resamples']} resamples of the test images)"
        missing = [m for m in result["metrics"] if m not in resampled]
        if missing:
            images += f"; not for {', '.join(missing)} (no per-image formulation)"
        if any(row["bootstrap"] and row["bootstrap"]["p"] == 0 for row in result["rows"]):
            images += f"; ~0: no resample crossed 0 (resolution 2/R = {2 / result['resamples']:.2g})"
    else:
        images = "no bootstrap (--resamples 0)"
    parts = [
        f"Δ = method − baseline of the means over seeds (% points for scores). Over seeds: {tests}; 95 % CI by "
        "bootstrap over seeds; ε_min: almost stochastic order of the method over the baseline (Dror et al. 2019; "
        f"< 0.5 favours the method, ≤ 0.2 strictly). Over images: {images}. p-values are Holm-adjusted over all "
        f"{result['num_tests']} p-values printed (McNemar included); * < {alpha:g}, ** < 0.01, *** < 0.001.",
        *_floor_notes(result),
    ]
    return " ".join(parts)


def comparison_tables(result: Mapping[str, Any]) -> list[Table]:
    """The Rich tables of a comparison: one per metric, McNemar, reported numbers, correlation, Friedman."""
    from artbench.evaluation.metrics import metric_label

    alpha, baseline = result["alpha"], result["baseline"]
    caption = _caption(result)
    tables = []
    for metric in result["metrics"] if result["rows"] else []:
        last = metric == result["metrics"][-1]
        table = Table(
            title=f"{result['task']} · {metric_label(metric)} · against {baseline}", caption=caption if last else None
        )
        for name, justify in (
            ("method", "left"),
            ("target", "left"),
            ("mean ± std", "right"),
            ("Δ", "right"),
            ("95 % CI seeds", "right"),
            ("t-test p", "right"),
            ("rank p", "right"),
            ("95 % CI images", "right"),
            ("bootstrap p", "right"),
            ("ε_min", "right"),
        ):
            table.add_column(name, justify=justify)
        for target in [*result["targets"], "overall"]:
            rows = [r for r in result["rows"] if r["target"] == target and r["metric"] == metric]
            if not rows and metric not in result["summary"][baseline][target]:
                continue
            if table.row_count:
                table.add_section()
            base = result["summary"][baseline][target].get(metric)
            if base is not None:
                table.add_row(escape(baseline), target, _mean_std(base, metric), *["" for _ in range(7)], style="dim")
            for row in rows:
                boot = row["bootstrap"] or {}
                table.add_row(
                    escape(row["method"]),
                    target,
                    _mean_std(result["summary"][row["method"]][target][metric], metric),
                    _delta(row, alpha),
                    _interval(row["ci_low"], row["ci_high"], metric),
                    _p(row["t_test"], alpha),
                    _p(row["rank_test"], alpha, floor_mark=True),
                    _interval(boot.get("ci_low"), boot.get("ci_high"), metric),
                    _p(boot, alpha),
                    f"{row['aso']:.2f}" if _finite(row["aso"]) else "–",
                    style="bold" if target == "overall" else None,
                )
        tables.append(table)
    tables += [t for t in (_mcnemar_table(result), _reported_table(result), _correlation_table(result)) if t]
    return tables


def _mcnemar_table(result: Mapping[str, Any]) -> Table | None:
    if not result["mcnemar"]:
        return None
    table = Table(
        title=f"{result['task']} · McNemar per target against {result['baseline']}",
        caption="McNemar's test on the test images with a known label, per seed pair (exact binomial below 25 "
        "discordant images, else χ² with continuity correction); 'a:b' = images only the method : only the baseline "
        "gets right. p = the largest over the seed pairs, a test that every pair differs (intersection-union, "
        "Berger 1982), Holm-adjusted with the other tables.",
    )
    for name in ("method", "target", "per seed a:b (p)", "p", "more right"):
        table.add_column(name)
    for test in result["mcnemar"]:
        pairs = " · ".join(f"{p['a_only']}:{p['b_only']} ({p['p']:.2g})" for p in test["pairs"])
        table.add_row(escape(test["method"]), test["target"], pairs, _p(test, result["alpha"]), test["direction"])
    return table


def _reported_table(result: Mapping[str, Any]) -> Table | None:
    if not result["reported"]:
        return None
    papers = ", ".join(sorted({r["paper"] for r in result["reported"]}))
    table = Table(
        title=f"{result['task']} · reproduced beside reported ({escape(papers)})",
        caption="reported = the paper's numbers (no test: a paper gives no per-seed values); Δ = reproduced − reported",
    )
    for name in ("method", "target", "metric", "reproduced", "reported", "Δ"):
        table.add_column(name, justify="left" if name in ("method", "target", "metric") else "right")
    for r in result["reported"]:
        reported = _score(r["reported"], r["metric"])
        if _finite(r["reported_std"]):
            reported += f" ± {_score(r['reported_std'], r['metric'])}"
        table.add_row(
            escape(r["method"]),
            r["target"],
            r["metric"],
            _mean_std(r, r["metric"]),
            f"{reported} ({r['source']})",
            _score(r["diff"], r["metric"], signed=True),
        )
    return table


def _correlation_table(result: Mapping[str, Any]) -> Table | None:
    corr = result.get("correlation")
    if not corr:
        return None
    values = ", ".join(f"{t} {v:.3g}" for t, v in corr["values"].items())
    table = Table(
        title=f"{result['task']} · per-target gain in {corr['metric']} against {corr['property']}",
        caption=f"{corr['property']}: {values}. Pearson's r and Spearman's ρ with two-sided p (not Holm-adjusted).",
    )
    for name in ("method", "gains", "n", "Pearson r (p)", "Spearman ρ (p)"):
        table.add_column(name)
    for c in corr["results"]:
        if c.get("note"):
            table.add_row(escape(c["method"]), c["source"], str(len(c["targets"])), c["note"], "")
            continue
        table.add_row(
            escape(c["method"]),
            c["source"],
            str(c["n"]),
            f"{c['pearson_r']:.3f} ({c['pearson_p']:.3f})",
            f"{c['spearman_rho']:.3f} ({c['spearman_p']:.3f})",
        )
    return table


def friedman_line(result: Mapping[str, Any]) -> str | None:
    f = result.get("friedman")
    if not f:
        return None
    ranks = ", ".join(f"{escape(m)} {r:.2f}" for m, r in f["avg_ranks"].items())
    test = f"Friedman χ² = {f['statistic']:.3g}, p = {f['p']:.3g}" if _finite(f["p"]) else f["note"]
    return (
        f"{test} over {f['n_datasets']} targets × {f['n_methods']} runs ({f['metric']}); average ranks {ranks}; "
        f"Nemenyi CD = {f['cd']:.2f} at α = {f['alpha']:g} (Demšar 2006)"
    )


def _mlflow_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    for row in result["rows"]:
        key = f"{row['method']}.{row['target']}.{row['metric']}"
        values[f"{key}.diff"] = row["diff"]
        values[f"{key}.t_p_holm"] = row["t_test"]["p_holm"]
        values[f"{key}.rank_p_holm"] = row["rank_test"]["p_holm"]
        values[f"{key}.aso"] = row["aso"]
        if row["bootstrap"]:
            values[f"{key}.bootstrap_p_holm"] = row["bootstrap"]["p_holm"]
    for test in result["mcnemar"]:
        values[f"{test['method']}.{test['target']}.mcnemar_p_holm"] = test["p_holm"]
    return {k: float(v) for k, v in values.items() if _finite(v)}


def evaluate(
    task: Annotated[str, typer.Argument(help="Task name (see `artbench tasks list`) or path to a task .toml.")],
    predictions: Annotated[Path, typer.Argument(help="Predictions CSV in the predictions.csv layout of a run.")],
    split: Annotated[str, typer.Option(help="The split the predictions cover: test, val or train.")] = "test",
    scores: Annotated[
        Path | None, typer.Option(help="Scores .npz in the scores.npz layout; needed for top-k accuracy and mAP.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    plugin: PluginOpt = None,
) -> None:
    """Score a predictions file against TASK's ground truth, exactly as `artbench run` scores a seed."""
    from artbench.data.task_data import prepare_task
    from artbench.evaluation.metrics import METRICS, metric_label
    from artbench.results.evaluate import evaluate_file
    from artbench.results.store import jsonable
    from artbench.tasks import load_task

    load_plugins(plugin)
    result = evaluate_file(prepare_task(load_task(task)), predictions, split=split, scores=scores)
    result["predictions"], result["scores"] = str(predictions), None if scores is None else str(scores)
    if json_:
        typer.echo(json.dumps(jsonable(result)))
        return
    per_target, overall = result["metrics"]["targets"], result["metrics"]["overall"]
    unavailable = set(result["unavailable"])
    table = Table(
        title=f"{result['task']} · {predictions.name} · {result['split']} split ({result['num_images']} images)",
        caption="scores in %, errors (MAE, RMSE) plain; – does not apply or is undefined"
        + ("; n/a needs --scores" if unavailable else ""),
    )
    table.add_column("metric")
    for name in [*per_target, "overall"]:
        table.add_column(name, justify="right", style="bold" if name == "overall" else None)
    for metric in [m for m in METRICS.names() if m in overall]:
        cells = [
            "n/a" if f"{name}.{metric}" in unavailable else _score(values.get(metric), metric)
            for name, values in per_target.items()
        ]
        all_unavailable = all(f"{n}.{metric}" in unavailable for n, v in per_target.items() if metric in v)
        table.add_row(metric_label(metric), *cells, "n/a" if all_unavailable else _score(overall[metric], metric))
    out.print(table)


def compare(
    task: Annotated[str, typer.Argument(help="Task name (see `artbench tasks list`) or path to a task .toml.")],
    methods: Annotated[
        list[str],
        typer.Argument(help="Methods (their latest complete run in --out) or run folders.", metavar="METHOD_OR_RUN..."),
    ],
    baseline: Annotated[
        str | None, typer.Option(help="Method or run folder the others are compared with (default: the first).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="Metric to compare (repeatable or comma-separated; default: the task's)."),
    ] = None,
    out_dir: OutOpt = Path("artbench-out"),
    reported: Annotated[
        str | None, typer.Option(help="Reported results to put beside, e.g. baselines/silknet.toml (or silknet).")
    ] = None,
    correlate: Annotated[
        str | None,
        typer.Option(
            help="Correlate per-target gains with labelled_fraction, num_classes, imbalance_ratio or "
            "underrepresented_share."
        ),
    ] = None,
    resamples: Annotated[
        int, typer.Option(min=0, max=100_000, help="Bootstrap resamples (0 skips the bootstrap over images).")
    ] = 10_000,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow tracking URI ('none' disables tracking). Default: $MLFLOW_TRACKING_URI, "
            "else a SQLite store in --out."
        ),
    ] = None,
    plugin: PluginOpt = None,
) -> None:
    """Compare finished runs of TASK with a baseline: per target and overall, over seeds and over test images."""
    from artbench.data.task_data import prepare_task
    from artbench.results.compare import (
        PROPERTIES,
        check_metrics,
        compare_runs,
        load_reported,
        resolve_comparison,
        target_properties,
        write_comparison,
    )
    from artbench.results.store import jsonable, new_run_id
    from artbench.tasks import load_task
    from artbench.tracking.mlflow import MlflowTracker, default_tracking_uri, probe_tracking_uri

    load_plugins(plugin)
    task_spec = load_task(task)
    names = check_metrics(task_spec, [n for m in metric or [] for n in split_names(m)] or list(task_spec.metrics))
    if correlate is not None and correlate not in PROPERTIES:
        raise ArtbenchError(f"--correlate {correlate!r} is not a target property; valid: {', '.join(PROPERTIES)}")
    papers = load_reported(reported)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(out_dir)
    runs, base = resolve_comparison(task_spec, methods, baseline, out_dir)
    if len(runs) < 2 and not papers:
        raise ArtbenchError("give at least two methods or runs to compare (or --reported to put a paper beside one)")
    tracker = None
    if uri != "none":
        probe_tracking_uri(uri)
        tracker = MlflowTracker(uri, task_spec.name, out_dir / "mlartifacts")
    properties = target_properties(prepare_task(task_spec)) if correlate else None
    result = compare_runs(
        task_spec,
        runs,
        baseline=base,
        metrics=names,
        resamples=resamples,
        reported=papers,
        properties=properties,
        correlate_property=correlate,
    )
    folder = out_dir / "_comparisons" / task_spec.name / new_run_id()
    result["folder"] = str(folder)
    files = write_comparison(result, folder)
    if tracker is not None:
        tracker.start_run(
            f"compare vs {base}",
            {"baseline": base, "runs": ",".join(runs), "metrics": ",".join(names), "resamples": resamples},
            {"artbench.kind": "comparison", "artbench.task": task_spec.name, "artbench.baseline": base},
        )
        tracker.end_run(_mlflow_metrics(result), files, "FINISHED", "complete")
    if json_:
        typer.echo(json.dumps(jsonable(result)))
        return
    for table in comparison_tables(result):
        out.print(table)
    if line := friedman_line(result):
        out.print(line, soft_wrap=True)
    out.print(f"comparison: {folder}", soft_wrap=True)
    if tracker is not None:
        out.print(f"MLflow:     {uri} (experiment '{task_spec.name}', tag artbench.kind=comparison)", soft_wrap=True)
