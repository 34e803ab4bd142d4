"""``artbench bench``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from artbench.cli.common import PluginOpt, load_plugins, out

BENCH_EPILOG = "Example:\n\n  artbench bench --device cuda --backbone resnet50 --image-size 224 --batch-size 128"


def bench(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    backbone: Annotated[str, typer.Option(help="Backbone name.")] = "tiny_cnn",
    image_size: Annotated[int, typer.Option(min=8, help="Square input size in pixels.")] = 64,
    batch_size: Annotated[int, typer.Option(min=2, help="Training batch size.")] = 64,
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per measurement.")] = 20,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up steps.")] = 3,
    task: Annotated[str, typer.Option(help="Task whose prepared cache feeds the pipeline.")] = "silknow-synth",
    plugin: PluginOpt = None,
) -> None:
    """Training throughput (images/s) of the real pipeline vs a model-only loop, and their ratio."""
    from artbench.methods.torch.bench import run_bench
    from artbench.tasks import load_task

    load_plugins(plugin)
    result = run_bench(
        task=load_task(task),
        device=device,
        backbone=backbone,
        image_size=image_size,
        batch_size=batch_size,
        steps=steps,
        warmup=warmup,
    )
    table = Table(
        title=f"training throughput · {result['device_name']} · {backbone} · {image_size}px · batch {batch_size}"
    )
    table.add_column("loop")
    table.add_column("images/s", justify="right")
    table.add_row("pipeline (cache → augment → fwd/bwd/step)", f"{result['pipeline_images_per_s']:.1f}")
    table.add_row("model only (device tensors)", f"{result['model_images_per_s']:.1f}")
    table.add_section()
    table.add_row("ratio pipeline / model-only", f"{result['ratio']:.3f}", style="bold")
    out.print(table)
