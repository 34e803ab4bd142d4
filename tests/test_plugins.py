"""Researchers add methods and datasets without forking: a local module loaded with --plugin."""

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.data.dataset import DATASETS
from artbench.methods import METHODS
from tests.conftest import run_cli

PLUGIN = """
from artbench.data.dataset import Dataset, read_csv_table, register_dataset
from artbench.methods import MethodSpec, register_method

register_method(MethodSpec("mtl_gamma1", "focal MTL with gamma = 1", config={"gamma": 1.0}))


@register_dataset("my-collection")
def my_collection(path: str) -> Dataset:
    return Dataset("my-collection", read_csv_table(path, group_col="object"))
"""


@pytest.fixture(autouse=True)
def _restore_registries():
    """Plugins register into global registries; undo that after each test."""
    saved = {reg: dict(reg._items) for reg in (METHODS, DATASETS)}
    yield
    for reg, items in saved.items():
        reg._items = items


def test_plugin_module_registers_method_and_dataset(tmp_path: Path, capsys, monkeypatch) -> None:
    images = tmp_path / "img"
    images.mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for i in range(60):
        colour = ("red", "blue")[i % 2]
        rgb = (200, 30, 30) if colour == "red" else (30, 30, 200)
        noise = rng.integers(0, 40, (16, 16, 3))
        Image.fromarray((noise + rgb).clip(0, 255).astype("uint8")).save(images / f"{i}.png")
        rows.append({"image": f"img/{i}.png", "object": f"o{i // 2}", "colour": colour if i % 5 else ""})
    pd.DataFrame(rows).to_csv(tmp_path / "collection.csv", index=False)
    (tmp_path / "my_plugin_mod.py").write_text(PLUGIN)
    (tmp_path / "task.toml").write_text(
        textwrap.dedent(f"""
        name = "my-task"
        dataset = "my-collection"
        [dataset_options]
        path = "{tmp_path / "collection.csv"}"
        [[targets]]
        name = "colour"
        [defaults]
        backbone = "tiny_cnn"
        weights = "none"
        image_size = 16
        batch_size = 8
        max_epochs = 1
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = run_cli(capsys, "methods", "list", "--plugin", "my_plugin_mod")
    assert code == 0 and "mtl_gamma1" in out
    code, out, err = run_cli(
        capsys,
        "run",
        str(tmp_path / "task.toml"),
        "mtl_gamma1",
        "--plugin",
        "my_plugin_mod",
        "--out",
        str(tmp_path / "out"),
        "--tracking-uri",
        "none",
        "--device",
        "cpu",
    )
    assert code == 0, err
    run_dir = next((tmp_path / "out" / "my-task" / "mtl_gamma1").iterdir())
    assert json.loads((run_dir / "config.json").read_text())["config"]["gamma"] == 1.0
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    sys.modules.pop("my_plugin_mod", None)


def test_plugin_from_file_path(tmp_path: Path, capsys) -> None:
    path = tmp_path / "file_plugin.py"
    path.write_text(
        "from artbench.methods import MethodSpec, register_method\n"
        'register_method(MethodSpec("from_file", "a method from a file", config={"gamma": 0.5}))\n'
    )
    code, out, _ = run_cli(capsys, "methods", "list", "--plugin", str(path))
    assert code == 0 and "from_file" in out
