"""``artbench bench``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from artbench.cli.common import PluginOpt, load_plugins, out

if TYPE_CHECKING:
    from artbench.core.task import TaskSpec

BENCH_EPILOG = (
    "Examples:\n\n  artbench bench --device cuda --backbone resnet50 --image-size 224 --batch-size 128\n\n"
    "  artbench bench --head-only --device cuda --backbone resnet50 --image-size 224 --batch-size 32"
)


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
    plugin: PluginOpt = None,
) -> None:
    """Training throughput (images/s) of the real pipeline vs a model-only loop, and their ratio."""
    from artbench.methods.torch.bench import run_bench
    from artbench.tasks import load_task

    load_plugins(plugin)
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
    table = Table(
        title=f"head-only training · {result['device_name']} · {backbone} ({result['feature_dim']}-d) · "
        f"{image_size}px · batch {batch_size} · {result['shared_units']} shared units"
    )
    table.add_column("loop")
    table.add_column("images/s", justify="right")
    table.add_row("head on cached features", f"{result['cached_images_per_s']:.1f}")
    table.add_row("frozen forward + head (features recomputed)", f"{result['recompute_images_per_s']:.1f}")
    table.add_row("frozen forward only", f"{result['forward_images_per_s']:.1f}")
    table.add_section()
    table.add_row("speed-up cached / recomputed", f"{result['speedup']:.1f}×", style="bold")
    table.add_row(f"one-off feature cache of {result['num_images']} images", f"≈ {result['cache_seconds']:.1f} s")
    out.print(table)
