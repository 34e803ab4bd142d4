"""The Typer application: one module per command group, composed here."""

from __future__ import annotations

import typer

from artbench.cli.bench import BENCH_EPILOG, bench
from artbench.cli.catalog import methods_app, metrics_app, tasks_app
from artbench.cli.compare import COMPARE_EPILOG, EVALUATE_EPILOG, compare, evaluate
from artbench.cli.datasets import datasets_app
from artbench.cli.leaderboard import leaderboard_app
from artbench.cli.run import run
from artbench.cli.sweep import sweep_app
from artbench.cli.ui import UI_EPILOG, ui

app = typer.Typer(
    help="artbench: benchmark suite for machine learning on cultural-heritage collections.\n\n"
    "Example: artbench run silknow-synth mtl --seeds 3",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(
    epilog="Examples:\n\n  artbench run silknow-synth mtl --seeds 3\n\n"
    "  artbench run silknow-synth mtl_fo_rall --seeds 5 --set lr=3e-4 --set max_epochs=50\n\n"
    "  artbench run my_task.toml mtl --config baselines/silknet.toml --device cuda\n\n"
    "  artbench run silknow-synth mtl --seeds 3 --resume"
)(run)
app.command(epilog=BENCH_EPILOG)(bench)
app.command(epilog=UI_EPILOG)(ui)
app.command(epilog=EVALUATE_EPILOG)(evaluate)
app.command(epilog=COMPARE_EPILOG)(compare)
app.add_typer(tasks_app, name="tasks")
app.add_typer(methods_app, name="methods")
app.add_typer(metrics_app, name="metrics")
app.add_typer(datasets_app, name="datasets")
app.add_typer(sweep_app, name="sweep")
app.add_typer(leaderboard_app, name="leaderboard")
