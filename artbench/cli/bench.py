"""``artbench bench``."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from artbench.cli.common import PluginOpt, load_plugins, out
from artbench.core.errors import ArtbenchError

if TYPE_CHECKING:
    from artbench.core.task import TaskSpec

BENCH_EPILOG = (
    "Examples:\n\n  artbench bench --device cuda --backbone resnet50 --image-size 224 --batch-size 128 --compile\n\n"
    "  artbench bench --head-only --device cuda --backbone resnet50 --image-size 224 --batch-size 32\n\n"
    "  artbench bench --protocol baselines/silknet.toml --task silknow-synth-full --device cuda\n\n"
    "  artbench bench --protocol baselines/silknet.toml --task silknow-synth --device cpu "
    "--set backbone=tiny_cnn --set weights=none --set image_size=32"
)
PROTOCOL_EPOCHS = 2
"""Epochs per method in protocol mode: the first holds one-off work (compilation, autotuning), the second is timed."""


def bench(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    backbone: Annotated[str, typer.Option(help="Backbone name.")] = "tiny_cnn",
    image_size: Annotated[int, typer.Option(min=8, help="Square input size in pixels.")] = 64,
    batch_size: Annotated[int, typer.Option(min=2, help="Training batch size.")] = 64,
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per measurement.")] = 20,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up steps.")] = 3,
    task: Annotated[str, typer.Option(help="Task whose prepared cache feeds the pipeline.")] = "silknow-synth",
    head_only: Annotated[
        bool,
        typer.Option(
            "--head-only",
            help="Frozen-backbone methods: the OmniArt head trained on cached features vs on features recomputed "
            "by a frozen forward pass of every batch, and their ratio (the feature cache's speed-up).",
        ),
    ] = False,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="Also time the model-only loop after torch.compile (same batch, same process) and give the ratio "
            "compiled/eager; with --protocol, train the methods compiled.",
        ),
    ] = False,
    protocol: Annotated[
        Path | None,
        typer.Option(
            help="Recipe file (e.g. baselines/silknet.toml): time one epoch of each method of its \\[reported.*] "
            "tables on --task with its \\[config], and estimate the GPU-hours of the whole protocol.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="With --protocol: override a method parameter, key=value.")
    ] = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", help="With --protocol: the results folder whose earlier complete runs give the epochs per seed."
        ),
    ] = Path("artbench-out"),
    plugin: PluginOpt = None,
) -> None:
    """Training throughput (images/s) of the real pipeline vs a model-only loop, and their ratio.

    --protocol: seconds per epoch of each method of a recipe and the estimated GPU-hours of its protocol (methods ×
    seeds × epochs, the epochs observed in earlier complete runs in --out with the same settings, where there are
    some)."""
    from artbench.methods.torch.bench import run_bench
    from artbench.tasks import load_task

    if set_ and protocol is None:
        raise ArtbenchError("--set applies to --protocol; leave it out or add --protocol RECIPE")
    if protocol is not None and head_only:
        raise ArtbenchError("--protocol and --head-only are two different benchmarks; pass one of them")
    load_plugins(plugin)
    if protocol is not None:
        _protocol(protocol, load_task(task), device, set_ or [], out_dir, compile)
        return
    if head_only:
        _head_only(load_task(task), device, backbone, image_size, batch_size, steps, warmup)
        return
    result = run_bench(
        task=load_task(task),
        device=device,
        backbone=backbone,
        image_size=image_size,
        batch_size=batch_size,
        steps=steps,
        warmup=warmup,
        compile=compile,
    )
    rows = [
        ("pipeline (cache → augment → fwd/bwd/step)", result["pipeline_images_per_s"]),
        ("model only (device tensors)", result["model_images_per_s"]),
    ]
    ratios = [("ratio pipeline / model-only", f"{result['ratio']:.3f}")]
    if compile:
        rows.append((f"model only, compiled (compiling took {result['compile_seconds']:.1f} s)",
                     result["compiled_images_per_s"]))  # fmt: skip
        ratios.append(("ratio compiled / eager (model only)", f"{result['compile_ratio']:.3f}"))
    title = f"training throughput · {result['device_name']} · {backbone} · {image_size}px · batch {batch_size}"
    out.print(_throughput_table(title, rows, ratios))


def _throughput_table(title: str, rows: list[tuple[str, float]], ratios: list[tuple[str, str]]) -> Table:
    """Images/s per loop, then the ratios that summarise them (in bold)."""
    table = Table(title=title)
    table.add_column("loop")
    table.add_column("images/s", justify="right")
    for label, images_per_s in rows:
        table.add_row(label, f"{images_per_s:.1f}")
    table.add_section()
    for label, value in ratios:
        table.add_row(label, value, style="bold")
    return table


def _head_only(
    task: TaskSpec, device: str, backbone: str, image_size: int, batch_size: int, steps: int, warmup: int
) -> None:
    from artbench.methods.torch.bench import run_head_bench

    result = run_head_bench(
        task=task,
        device=device,
        backbone=backbone,
        image_size=image_size,
        batch_size=batch_size,
        steps=steps,
        warmup=warmup,
    )
    title = (
        f"head-only training · {result['device_name']} · {backbone} ({result['feature_dim']}-d) · "
        f"{image_size}px · batch {batch_size} · {result['shared_units']} shared units"
    )
    rows = [
        ("head on cached features", result["cached_images_per_s"]),
        ("frozen forward + head (features recomputed)", result["recompute_images_per_s"]),
        ("frozen forward only", result["forward_images_per_s"]),
    ]
    ratios = [
        ("speed-up cached / recomputed", f"{result['speedup']:.1f}×"),
        (f"one-off feature cache of {result['num_images']} images", f"≈ {result['cache_seconds']:.1f} s"),
    ]
    out.print(_throughput_table(title, rows, ratios))


def _recipe(path: Path) -> tuple[dict[str, Any], list[str], int]:
    """A recipe file's ``[config]``, the registered methods among its ``[reported.*]`` tables, and its seeds."""
    from artbench.core.params import load_config_file, read_toml
    from artbench.methods import METHODS

    config = load_config_file(path)
    data = read_toml(path, "recipe file")
    reported = data.get("reported")
    methods = [m for m in reported if m in METHODS.names()] if isinstance(reported, dict) else []
    if not methods:
        raise ArtbenchError(f"--protocol {str(path)!r}: no [reported.<method>] table names a registered method")
    paper = data.get("paper") if isinstance(data.get("paper"), dict) else {}
    seeds = data.get("seeds", paper.get("seeds"))
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ArtbenchError(f"--protocol {str(path)!r}: the recipe needs seeds = N (a positive integer) in [paper]")
    return config, methods, seeds


def observed_epochs(out_dir: Path, task: str, method: str, params: dict[str, Any]) -> float | None:
    """Mean epochs per seed over the earlier complete runs of ``method`` on ``task`` in ``out_dir`` that were trained
    with exactly ``params`` (another backbone, learning rate or batch size stops at other epochs); None: none."""
    from artbench.results.store import find_runs

    epochs = [
        c["epochs"]
        for record in find_runs(out_dir, task, method)
        if record.status == "complete" and record.config.get("params") == params
        for c in (record.summary.get("cost") or {}).get("seeds", [])
        if c.get("epochs")
    ]
    return statistics.fmean(epochs) if epochs else None


def _protocol(recipe: Path, task: TaskSpec, device: str, set_options: list[str], out_dir: Path, compile: bool) -> None:
    from artbench.core.device import resolve_device
    from artbench.core.params import parse_set_option, to_plain
    from artbench.data.task_data import prepare_task
    from artbench.methods import METHODS
    from artbench.methods.torch.bench import require_compiler, time_epochs
    from artbench.runner import check_kinds, resolve_method

    config, names, seeds = _recipe(recipe)
    set_layer = dict(parse_set_option(s) for s in set_options)
    dev = resolve_device(device)
    if compile:
        require_compiler(dev)
    chosen = []
    for name in names:  # every method resolved and checked before any data is prepared
        entry = METHODS.get(name)
        method = resolve_method(entry, task, config, set_layer, str(recipe))
        check_kinds(task, entry, method)
        method.check(task)
        chosen.append((name, method))
    data = prepare_task(task)
    table = Table(
        title=f"protocol {recipe.name} on {task.name} · {dev} · {seeds} seeds" + (" · compiled" if compile else ""),
        caption=f"s/epoch: epoch {PROTOCOL_EPOCHS} of a {PROTOCOL_EPOCHS}-epoch fit (training + validation); epoch 1 "
        "also holds one-off preparation (caches, features, compilation), which the hours leave out",
    )
    for column in ("method", "s/epoch", "epoch 1 s", "epochs/seed", "seeds", "hours"):
        table.add_column(column, justify="left" if column == "method" else "right")
    total = 0.0
    for name, method in chosen:
        timing = time_epochs(method, data, dev, epochs=PROTOCOL_EPOCHS, compile=compile)
        observed = observed_epochs(out_dir, task.name, name, to_plain(method))
        if timing.seconds_per_epoch is None:  # a method without epochs: its fit is the seed
            epochs_cell, hours, per_epoch = "–", seeds * timing.fit_seconds / 3600, "–"
        else:
            limit = getattr(method, "max_epochs", 1) * timing.models
            epochs = observed if observed is not None else limit
            source = "observed" if observed is not None else "max_epochs"
            epochs_cell = f"{epochs:.1f} ({source})"
            hours = seeds * epochs * timing.seconds_per_epoch / 3600
            per_epoch = f"{timing.seconds_per_epoch:.3g}"
        total += hours
        first = f"{timing.first_epoch_seconds:.1f}"
        table.add_row(name, per_epoch, first, epochs_cell, str(seeds), f"{hours:.3g}")
    table.add_section()
    table.add_row("protocol", "", "", "", "", f"{total:.3g} GPU-h" if dev.type == "cuda" else f"{total:.3g} h")
    out.print(table)
