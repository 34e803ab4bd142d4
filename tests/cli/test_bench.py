"""`artbench bench --compile` (model-only loop compiled vs eager, same batch) and `bench --protocol` (one timed epoch
per method of a recipe, the protocol's estimated hours) on the tiny task, on the CPU."""

import re
import shutil
import statistics
from pathlib import Path

import pytest

from artbench.cli.bench import observed_epochs
from artbench.results.store import find_runs

from ..conftest import run_cli, run_quick
from .test_cli_errors import assert_one_line_error

TINY = ["--set", "backbone=tiny_cnn", "--set", "weights=none", "--set", "image_size=32", "--set", "finetune_blocks=-1"]
RECIPE = str(Path(__file__).resolve().parents[2] / "baselines" / "silknet.toml")
SILKNET = ("mtl", "mtl_fo", "mtl_rsem", "mtl_rall", "mtl_fo_rsem", "mtl_fo_rall")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="torch.compile on the CPU needs a C compiler")
def test_bench_compile_adds_the_compiled_model_only_loop(tiny_task: Path, capsys) -> None:
    code, out, err = run_cli(
        capsys, "bench", "--compile", "--task", str(tiny_task), "--image-size", "32", "--batch-size", "16",
        "--steps", "2", "--warmup", "1", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert "model only, compiled (compiling took" in out
    assert re.search(r"ratio compiled / eager \(model only\)\s+│\s+\d+\.\d{3}", out)


def test_bench_compile_without_a_working_compiler_is_a_one_line_error(tiny_task: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("artbench.methods.torch.bench.compile_error", lambda device_type: "InvalidCxxCompiler: none")
    code, _, err = run_cli(capsys, "bench", "--compile", "--task", str(tiny_task), "--device", "cpu")
    assert_one_line_error(code, err, "--compile: torch.compile does not work on cpu here (InvalidCxxCompiler: none)")


def test_bench_protocol_times_every_method_of_the_recipe(tiny_task: Path, tmp_path: Path, capsys) -> None:
    recipe_run = ["--config", RECIPE, *TINY, "--device", "cpu", "--tracking-uri", "none", "--out", str(tmp_path)]
    assert run_cli(capsys, "run", str(tiny_task), "mtl", *recipe_run)[0] == 0  # the recipe's settings, complete
    assert run_quick(capsys, tiny_task, "mtl_fo", tmp_path, "--tracking-uri", "none")[0] == 0  # other settings
    (record,) = find_runs(tmp_path, "tiny-synth", "mtl")
    observed = statistics.fmean(c["epochs"] for c in record.summary["cost"]["seeds"])
    assert observed_epochs(tmp_path, "tiny-synth", "mtl", record.config["params"]) == pytest.approx(observed)
    (other,) = find_runs(tmp_path, "tiny-synth", "mtl_fo")
    assert observed_epochs(tmp_path, "tiny-synth", "mtl", other.config["params"]) is None
    code, out, err = run_cli(
        capsys, "bench", "--protocol", RECIPE, "--task", str(tiny_task), "--device", "cpu", "--out", str(tmp_path),
        *TINY,
    )  # fmt: skip
    assert code == 0, err
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 6}
    assert set(SILKNET) <= set(rows)
    assert f"{observed:.1f} (observed)" in rows["mtl"]
    assert "2.0 (max_epochs)" in rows["mtl_fo"]  # its 1-epoch run had other settings; the tiny task's max_epochs
    cells = [c.strip() for c in rows["mtl"].split("│")[1:-1]]
    seconds, seeds, hours = float(cells[1]), int(cells[4]), float(cells[5])
    assert seeds == 5 and hours == pytest.approx(seeds * observed * seconds / 3600, rel=0.011)  # 3 significant digits
    assert re.search(r"protocol\s+│.*│\s+[\d.e-]+ h\s+│", out)


def test_bench_protocol_checks_its_input(tiny_task: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "bench", "--task", str(tiny_task), "--set", "lr=0.1")
    assert_one_line_error(code, err, "--set applies to --protocol")
    args = ["bench", "--protocol", RECIPE, "--task", str(tiny_task), "--device", "cpu", *TINY]
    code, _, err = run_cli(capsys, *args, "--set", "no_such_key=1")
    assert_one_line_error(code, err, "no_such_key")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[paper]\nseeds = 3\n[config]\nlr = 0.1\n[reported.some_paper_model]\nf1 = 1.0\n")
    code, _, err = run_cli(capsys, "bench", "--protocol", str(recipe), "--task", str(tiny_task))
    assert_one_line_error(code, err, "no [reported.<method>] table names a registered method")
