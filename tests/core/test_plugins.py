"""Researchers add methods and datasets without forking: a local module loaded with --plugin."""

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.results.store import FORMAT_VERSION
from tests.conftest import run_cli

PLUGIN = """
from artbench.core.dataset import Dataset, register_dataset
from artbench.datasets.csv import read_csv_table
from artbench.methods import register_method
from artbench.methods.torch.silknet import SilkNetMethod

register_method("mtl_gamma1", SilkNetMethod, description="focal MTL with gamma = 1", gamma=1.0)


@register_dataset("my-collection")
def my_collection(path: str) -> Dataset:
    return Dataset("my-collection", read_csv_table(path, group_col="object"))
"""


@pytest.fixture(autouse=True)
def _restore_registries(restore_registries):
    yield


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
    assert json.loads((run_dir / "config.json").read_text())["params"]["gamma"] == 1.0
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    sys.modules.pop("my_plugin_mod", None)


MAJORITY = """
from dataclasses import dataclass

import numpy as np

from artbench.core.params import param
from artbench.methods import Method, Predictions, Predictor, register_method


@register_method("majority", description="predicts the training class frequencies")
@dataclass
class Majority(Method):
    smoothing: float = param(0.0, "added to every class count", lambda v: v >= 0, ">= 0")

    def fit(self, data, seed, ctx):
        train = data.index("train")
        priors = {}
        for spec, codes in zip(data.targets, data.labels):
            known = codes[train][codes[train] >= 0]
            counts = np.bincount(known, minlength=spec.num_outputs) + self.smoothing
            priors[spec.name] = counts / counts.sum()
        return MajorityPredictor(priors)


class MajorityPredictor(Predictor):
    def __init__(self, priors):
        self.priors, self.info = priors, {}

    def predict(self, data, index):
        return Predictions(index, {n: np.tile(p, (len(index), 1)) for n, p in self.priors.items()})
"""


def test_plugin_from_file_path_adds_a_method_family(tmp_path: Path, capsys, tiny_task: Path) -> None:
    path = tmp_path / "file_plugin.py"
    path.write_text(MAJORITY)
    code, out, _ = run_cli(capsys, "methods", "list", "--plugin", str(path))
    assert code == 0 and "majority" in out
    code, out, _ = run_cli(capsys, "methods", "show", "majority", "--plugin", str(path))
    assert code == 0 and "smoothing" in out and "added to every class count" in out
    code, out, err = run_cli(
        capsys,
        "run",
        str(tiny_task),
        "majority",
        "--plugin",
        str(path),
        "--out",
        str(tmp_path / "out"),
        "--tracking-uri",
        "none",
        "--set",
        "smoothing=1",
        "--seeds",
        "2",
    )
    assert code == 0, err
    run_dir = next((tmp_path / "out" / "tiny-synth" / "majority").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["format_version"] == FORMAT_VERSION
    # a constant predictor: every seed identical, and OA = the share of the most frequent test class
    assert summary["metrics"]["place.accuracy"]["std"] == 0.0
    code, _, err = run_cli(capsys, "run", str(tiny_task), "majority", "--plugin", str(path), "--set", "gamma=1")
    assert code == 2 and "method 'majority' has no parameter 'gamma'; its parameters: smoothing" in err
