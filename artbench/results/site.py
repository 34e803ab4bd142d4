"""The published leaderboards folder (issue 11, "Leaderboards"): per task the board's Markdown, CSV and JSON
(:func:`artbench.results.leaderboard.write_board`), a static HTML page with sortable table and plots, an index page,
and an MLflow run per board tagged ``artbench.kind=leaderboard``.

```
<out>/index.html               every task's leader, linking to its page
<out>/<task>.html              the board, its significance statement and notes, three plots
<out>/<task>.md|.csv|.json     the same board as files
<out>/img/<task>-*.png         bars with error bars, per-class score against training frequency, CD diagram
<out>/submissions/<task>/<name>/   verified submissions (run folders), see artbench.results.submission
```
The pages load nothing from the network: the style and the sorting script are inline and every image and link is
a relative path inside the folder, so the folder can be published as it is.
"""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

import artbench
from artbench.core.task import TaskSpec
from artbench.evaluation.cd_diagram import plot_critical_difference
from artbench.evaluation.metrics import METRICS
from artbench.results.leaderboard import (
    SUBMISSIONS,
    Board,
    Entry,
    build_board,
    column_label,
    metric_of,
    reference_notes,
    scale,
    table_header,
    table_rows,
    write_board,
)

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 80rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " ▲"; } th[aria-sort=descending]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.reference td { color: #666; font-style: italic; background: #fafafa; }
tr.submission td:nth-child(2) { font-weight: 600; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 13px; }
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col], value = cell.getAttribute("data-value");
        if (value === null) return cell.textContent.trim().toLowerCase();
        return value === "" ? null : Number(value);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1;
        if (typeof x === "number") return ascending ? x - y : y - x;
        return ascending ? x.localeCompare(y) : y.localeCompare(x);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


# ------------------------------------------------------------------------------------------------------- plots


def _colours(n: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plot_bars(board: Board, path: Path) -> Path:
    """The ranking metric per target and over targets: one bar per measured entry, error bars = std over seeds."""
    keys = [k for k in board.columns if metric_of(k) == board.ranking]
    entries = board.measured
    factor = scale(board.ranking)
    width = 0.8 / max(len(entries), 1)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(keys) + 2), 3.8))
    for i, (entry, colour) in enumerate(zip(entries, _colours(len(entries)), strict=True)):
        means = [factor * (entry.mean(k) if entry.mean(k) is not None else np.nan) for k in keys]
        stds = [factor * (entry.metrics.get(k, {}).get("std") or 0.0) for k in keys]
        offset = (i - (len(entries) - 1) / 2) * width
        ax.bar(x + offset, means, width, yerr=stds, capsize=3, label=entry.name, color=colour)
    ax.set_xticks(x, ["mean over targets" if k.startswith("overall.") else k.rsplit(".", 1)[0] for k in keys])
    unit = " (%)" if factor == 100 else ""
    ax.set_ylabel(f"{METRICS.get(board.ranking).label}{unit}")
    ax.set_title(f"{board.task.name}: mean ± std over seeds", fontsize=10)
    ax.legend(fontsize=8, frameon=False, ncols=min(len(entries), 4))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_per_class(board: Board, path: Path) -> Path | None:
    """Per classification target, each class's score (mean over seeds) against its frequency (log scale)."""
    targets = list(board.per_class)
    if not targets:
        return None
    cols = min(3, len(targets))
    rows = -(-len(targets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    names = [e.name for e in board.measured]
    colours = dict(zip(names, _colours(len(names)), strict=True))
    for ax, target in zip(axes.flat, targets, strict=False):
        data = board.per_class[target]
        for name, scores in data["entries"].items():
            classes = [c for c in scores if c in data["frequency"]]
            counts = np.array([data["frequency"][c] for c in classes], dtype=float)
            percent = [100 * scores[c] for c in classes]
            ax.scatter(np.maximum(counts, 0.8), percent, s=14, alpha=0.75, color=colours.get(name), label=name)
        ax.set_xscale("log")  # plain tick labels: mathtext is off, so that class and method names stay plain text
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-3, 103)
        ax.set_title(target, fontsize=10)
        ax.set_xlabel(data["frequency_of"], fontsize=8)
        ax.set_ylabel(f"per-class {data['score']} (%)", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(targets) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(board: Board, img_dir: Path) -> dict[str, Path]:
    """The board's PNG plots under ``img_dir``, by kind (``bars``, ``per_class``, ``cd``)."""
    img_dir.mkdir(parents=True, exist_ok=True)
    stem = board.task.name
    plots: dict[str, Path] = {}
    with plt.rc_context({"text.parse_math": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        plots["bars"] = plot_bars(board, img_dir / f"{stem}-bars.png")
        per_class = plot_per_class(board, img_dir / f"{stem}-per-class.png")
        if per_class is not None:
            plots["per_class"] = per_class
    if board.cd is not None:
        plots["cd"] = plot_critical_difference(
            board.cd["avg_ranks"], board.cd["cd"], img_dir / f"{stem}-cd.png", f"{stem}: average rank over targets"
        )
    return plots


# -------------------------------------------------------------------------------------------------------- HTML


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        f"<p class='note'>Built by artbench {html.escape(artbench.__version__)} "
        "(<code>artbench leaderboard build</code>).</p>\n"
        f"<script>{SORT_SCRIPT}</script>\n</body>\n</html>\n"
    )


def _sort_values(board: Board, entry: Entry) -> list[str | None]:
    """``data-value`` of each cell (numbers sort numerically; ``None``: sort by the text)."""

    def number(value: float | None) -> str:
        return "" if value is None else repr(float(value))

    vs = entry.vs_best or {}
    vs_value = -1.0 if vs.get("is_baseline") else vs.get("p_holm")
    return [
        number(entry.rank),
        None,
        None,
        *(number(entry.mean(k)) for k in board.columns),
        number(len(entry.seeds) if entry.measured else entry.paper_seeds),
        number(vs_value),
        None,
        number(entry.wall_seconds),
        None,
    ]


def board_table(board: Board) -> str:
    header = "".join(f"<th scope='col' title='click to sort'>{html.escape(h)}</th>" for h in table_header(board))
    body = []
    for entry, cells in zip(board.entries, table_rows(board), strict=True):
        kind = "reference" if not entry.measured else entry.source.replace("artbench run", "run")
        tds = []
        for text, value in zip(cells, _sort_values(board, entry), strict=True):
            attrs = "" if value is None else f" class='num' data-value='{html.escape(value)}'"
            tds.append(f"<td{attrs}>{html.escape(text)}</td>")
        title = f" title='{html.escape(entry.note)}'" if entry.note else ""
        body.append(f"<tr class='{kind}'{title}>{''.join(tds)}</tr>")
    return (
        f"<table class='board sortable' id='board'>\n<thead><tr>{header}</tr></thead>\n"
        f"<tbody>\n{chr(10).join(body)}\n</tbody>\n</table>"
    )


CAPTIONS = {
    "bars": "Ranking metric per target and over targets, mean over seeds; error bars: standard deviation over seeds.",
    "per_class": "Per-class score (mean over seeds) against the class's frequency: where imbalance costs accuracy.",
}


def task_page(board: Board, plots: dict[str, Path], out_dir: Path) -> str:
    task = board.task
    unit = "scores in %" if board.higher_is_better else "errors in the target's unit"
    files = " · ".join(f"<a href='{html.escape(task.name)}.{ext}'>{ext.upper()}</a>" for ext in ("md", "csv", "json"))
    parts = [
        "<p><a href='index.html'>← all leaderboards</a></p>",
        f"<h1>Leaderboard: {html.escape(task.name)}</h1>",
        f"<p>{html.escape(task.description)}</p>" if task.description else "",
        f"<p>Ranked by <strong>{html.escape(column_label('overall.' + board.ranking))}</strong> (mean over "
        f"targets), mean ± std over seeds on the test split; {unit}. Click a column header to sort. "
        f"The same board: {files}.</p>",
        board_table(board),
        f"<p class='note'>{html.escape(board.significance)}</p>",
        "<ul class='note'>" + "".join(f"<li>{html.escape(n)}</li>" for n in board.notes) + "</ul>",
    ]
    papers = reference_notes(board)
    if papers:
        parts.append(
            "<p class='note'>Reference rows: "
            + "; ".join(f"{html.escape(p)}: {html.escape(n)}" for p, n in papers.items())
            + "</p>"
        )
    captions = {**CAPTIONS, "cd": board.cd_note}
    for kind, path in plots.items():
        src = path.relative_to(out_dir).as_posix()
        parts.append(
            f"<figure><img src='{html.escape(src)}' alt='{html.escape(kind)} plot of {html.escape(task.name)}'>"
            f"<figcaption>{html.escape(captions[kind])}</figcaption></figure>"
        )
    return _page(f"{task.name} · artbench leaderboard", "\n".join(p for p in parts if p))


def index_page(out_dir: Path) -> str:
    """Every board published in ``out_dir`` (a ``<task>.json`` beside its ``<task>.html``), by task name."""
    rows = []
    for path in sorted(out_dir.glob("*.json")):
        if not (out_dir / f"{path.stem}.html").is_file():
            continue
        board = json.loads(path.read_text(encoding="utf-8"))
        key = f"overall.{board['ranking_metric']}"
        measured = [e for e in board["entries"] if e["rank"] is not None]
        leader = measured[0] if measured else None
        mean = leader["metrics"].get(key, {}).get("mean") if leader else None
        value = "–" if mean is None else f"{scale(board['ranking_metric']) * mean:.1f}"
        cells = [
            f"<td><a href='{html.escape(path.stem)}.html'>{html.escape(board['task'])}</a></td>",
            f"<td>{html.escape(board['description'])}</td>",
            f"<td>{html.escape(leader['name'] if leader else '–')}</td>",
            f"<td>{html.escape(column_label(key))}</td>",
            f"<td class='num' data-value='{'' if mean is None else mean}'>{value}</td>",
            f"<td class='num' data-value='{len(measured)}'>{len(measured)}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    header = "".join(f"<th scope='col'>{h}</th>" for h in ("task", "description", "leader", "metric", "score", "rows"))
    body = (
        "<h1>artbench leaderboards</h1>\n<p>One board per task: methods ranked by the task's first metric, "
        "from complete <code>artbench run</code> runs and verified submissions, beside the papers' reported "
        "numbers.</p>\n"
        f"<table class='sortable' id='tasks'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _page("artbench leaderboards", body)


# --------------------------------------------------------------------------------------------------- publishing


def publish(
    tasks: Sequence[TaskSpec],
    runs_dir: Path,
    out_dir: Path,
    tracking_uri: str | None = None,
) -> list[tuple[Board, list[Path]]]:
    """Build and write the boards of ``tasks`` (files, page, plots), rewrite the index over every board in
    ``out_dir``, and log one MLflow run per board (``artbench.kind=leaderboard``) into the task's experiment when
    ``tracking_uri`` is given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    submissions = out_dir / SUBMISSIONS
    published = []
    for task in tasks:
        board = build_board(task, runs_dir, submissions)
        files = write_board(board, out_dir)
        plots = write_plots(board, out_dir / "img")
        page = out_dir / f"{task.name}.html"
        page.write_text(task_page(board, plots, out_dir), encoding="utf-8")
        published.append((board, [*files, page, *plots.values()]))
    (out_dir / "index.html").write_text(index_page(out_dir), encoding="utf-8")
    if tracking_uri:
        for board, files in published:
            log_board(board, files, tracking_uri, runs_dir)
    return published


def log_board(board: Board, files: Sequence[Path], tracking_uri: str, runs_dir: Path) -> str | None:
    """One finished MLflow run in the task's experiment, beside its training runs: the ranked entries' values as
    metrics (``<entry>.<target>.<metric>``), the board's files and plots as artifacts."""
    from artbench.tracking.mlflow import MlflowTracker

    tracker = MlflowTracker(tracking_uri, board.task.name, runs_dir / "mlartifacts")
    metrics = {
        f"{entry.name}.{key}": entry.mean(key)
        for entry in board.measured
        for key in board.columns
        if entry.mean(key) is not None
    }
    params = {
        "task": board.task.name,
        "ranking_metric": board.ranking,
        "baseline": board.baseline or "",
        "entries": len(board.measured),
        "leader": board.measured[0].name if board.measured else "",
    }
    return tracker.log_finished_run(
        "leaderboard", "leaderboard", {"artbench.task": board.task.name}, params, metrics, files
    )
