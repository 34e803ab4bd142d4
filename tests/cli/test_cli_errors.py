"""User mistakes on the command line: one line on stderr, exit code 2, nothing half-made on disk."""

import json
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artbench.core.dataset import register_dataset
from tests.conftest import run_cli, run_quick


def assert_one_line_error(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "silknow-synth", "mtl", "--seeds", "0"], "Invalid value for '--seeds'"),
        (["run", "silknow-synth", "mtl", "--seeds", "abc"], "Invalid value for '--seeds'"),
        (["run"], "Missing argument"),
        (["run", "silknow-synth"], "Missing argument"),
        (["nope"], "No such command 'nope'"),
        (["run", "silknow-synth", "mtl", "--bogus"], "No such option: --bogus"),
        (["datasets", "stats"], "Missing argument"),
        (["run", "silknow-synth", "mtl", "--device", "cuda:abc"], "unknown device 'cuda:abc'"),
    ],
)
def test_usage_mistakes_are_one_line(args: list[str], message: str, capsys) -> None:
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, message)
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [[], ["tasks"], ["datasets"]])
def test_a_bare_command_shows_its_help(args: list[str], capsys) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == 0 and "Usage" in out + err and "Traceback" not in out + err


def test_stats_json_stays_clean_while_data_is_generated(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "fresh"))
    monkeypatch.setenv("ARTBENCH_QUIET", "0")  # the generator's progress bar is on
    task = tmp_path / "t.toml"
    task.write_text(
        'name = "t"\ndataset = "silknow-synth"\n[dataset_options]\nnum_images = 30\nimage_size = 16\n'
        '[[targets]]\nname = "material"\n'
    )
    code, out, _ = run_cli(capsys, "datasets", "stats", str(task), "--json")
    assert code == 0
    assert json.loads(out)["num_samples"] == 30


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (f"http://127.0.0.1:{_closed_port()}", "no MLflow server answers at"),
        ("bogus://x", "cannot reach MLflow tracking at 'bogus://x'"),
    ],
)
def test_unreachable_tracking_fails_fast_and_writes_nothing(
    uri: str, message: str, tiny_task: Path, tmp_path: Path, capsys
) -> None:
    start = time.perf_counter()
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out", "--tracking-uri", uri)
    assert_one_line_error(code, err, message)
    assert time.perf_counter() - start < 60  # MLflow's own retries would take minutes
    assert not (tmp_path / "out").exists()


def test_stats_on_a_dataset_whose_name_is_also_a_task(capsys) -> None:
    # `silknow-synth` is a task and a dataset: --targets picks the dataset.
    code, out, err = run_cli(
        capsys, "datasets", "stats", "silknow-synth", "--targets", "place", "--background", "place=bg place", "--json"
    )
    assert code == 0, err
    stats = json.loads(out)["targets"]
    assert list(stats) == ["place"] and stats["place"]["background"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["csv"], "dataset 'csv' (for a CSV file pass its path instead)"),
        (["silknow-synth", "--targets", ","], "--targets ',' names no target"),
        (["silknow-synth", "--background", "place="], "expected TARGET=VALUE"),
        (["silknow-synth", "--image-col", "path"], "--image-col and --group-col apply to a CSV source only"),
    ],
)
def test_stats_mistakes(args: list[str], message: str, capsys) -> None:
    code, _, err = run_cli(capsys, "datasets", "stats", *args)
    assert_one_line_error(code, err, message)


def test_stats_warns_about_a_background_value_that_never_occurs(capsys) -> None:
    code, out, err = run_cli(
        capsys, "datasets", "stats", "silknow-synth", "--targets", "place", "--background", "place=Atlantis", "--json"
    )
    assert code == 0 and "place='Atlantis' matches no sample" in err
    assert json.loads(out)["targets"]["place"]["background"] == 0


def _task_text(tiny_task: Path, **options: object) -> str:
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    return tiny_task.read_text().replace("num_images = 400\n", lines)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"num_images": "x"}, "num_images must be a positive integer, got 'x'"), ({"num_images": 0}, "got 0")],
)
def test_bad_dataset_options_name_the_task_file(
    options: dict, message: str, tiny_task: Path, tmp_path: Path, capsys
) -> None:
    task = tmp_path / "bad.toml"
    task.write_text(_task_text(tiny_task, **options))
    code, _, err = run_quick(capsys, task, "mtl", tmp_path / "out")
    assert_one_line_error(code, err, message)
    assert str(task) in err and "dataset_options" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """A 40-image CSV collection: `colour` is a real target, `empty` has no label, `bgonly` only background."""
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(40):
        colour = ("red", "blue")[i % 2]
        Image.fromarray(np.full((16, 16, 3), 200 if colour == "red" else 30, np.uint8)).save(tmp_path / f"img/{i}.png")
        rows.append({"image": f"img/{i}.png", "object": f"o{i // 2}", "colour": colour, "empty": "", "bgonly": "bg"})
    pd.DataFrame(rows).to_csv(tmp_path / "collection.csv", index=False)
    return tmp_path / "collection.csv"


def _csv_task(folder: Path, extra_target: str = "", background: str = "") -> Path:
    """A task over ``collection.csv`` (a path relative to the task file) with target `colour` [+ extra_target]."""
    extra = f'[[targets]]\nname = "{extra_target}"\n{background}' if extra_target else ""
    task = folder / "task.toml"
    task.write_text(
        'name = "mine"\ndataset = "csv"\n[dataset_options]\npath = "collection.csv"\ngroup_col = "object"\n'
        f'[[targets]]\nname = "colour"\n{extra}'
        '[defaults]\nbackbone = "tiny_cnn"\nweights = "none"\nimage_size = 16\nbatch_size = 8\nmax_epochs = 1\n'
    )
    return task


@pytest.mark.parametrize(("target", "background"), [("empty", ""), ("bgonly", 'background = ["bg"]\n')])
def test_a_target_without_labels_is_rejected_before_training(
    target: str, background: str, collection: Path, tmp_path: Path, capsys
) -> None:
    task = _csv_task(collection.parent, target, background)
    for method in ("mtl", "stl"):
        code, _, err = run_quick(capsys, task, method, tmp_path / "out")
        assert_one_line_error(code, err, f"target(s) ['{target}'] have no label in the train split")
    assert not (tmp_path / "out").exists()


def test_csv_paths_in_a_task_file_are_relative_to_it(collection: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    task = _csv_task(collection.parent)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = run_cli(capsys, "datasets", "stats", str(task), "--json")
    assert code == 0, err
    assert json.loads(out)["targets"]["colour"]["class_counts"] == {"blue": 20, "red": 20}


def test_an_undeclared_reserved_csv_column_is_not_a_target(collection: Path, capsys) -> None:
    table = pd.read_csv(collection).rename(columns={"object": "group"})
    table.to_csv(collection, index=False)
    task = collection.parent / "t.toml"
    task.write_text('name = "t"\ndataset = "csv"\n[dataset_options]\npath = "collection.csv"\n')
    task.write_text(task.read_text() + '[[targets]]\nname = "colour"\n')
    code, _, err = run_cli(capsys, "datasets", "stats", str(task))
    assert_one_line_error(code, err, "column(s) ['group'] would be read as targets but the names are reserved")


@pytest.mark.parametrize(
    ("weights", "message"),
    [("/nonexistent/weights.pt", "no such file"), ("imagenet", "tiny_cnn has no ImageNet weights")],
)
def test_bad_weights_are_found_before_the_run_folder(
    weights: str, message: str, tiny_task: Path, tmp_path: Path, capsys
) -> None:
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out", "--set", f"weights={weights}")
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()


def test_out_pointing_at_a_file(tiny_task: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "f").write_text("x")
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "f")
    assert_one_line_error(code, err, "is a file; pass a folder for the runs")


@pytest.fixture
def _restore_registries(restore_registries):
    yield


@pytest.mark.usefixtures("_restore_registries")
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(:\n", "broken.py:1: SyntaxError"),
        ("import no_such_dependency_xyz\n", "broken.py:1: ModuleNotFoundError: No module named 'no_such_dependency"),
        ("x = 1\nraise RuntimeError('boom')\n", "broken.py:2: RuntimeError: boom"),
    ],
)
def test_a_broken_plugin_is_one_line(source: str, message: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "broken.py").write_text(source)
    code, _, err = run_cli(capsys, "methods", "list", "--plugin", str(tmp_path / "broken.py"))
    assert_one_line_error(code, err, message)


@pytest.mark.usefixtures("_restore_registries")
def test_a_plugin_file_named_like_the_stdlib_does_not_shadow_it(tmp_path: Path, capsys) -> None:
    plugin = tmp_path / "random.py"
    plugin.write_text(
        "from artbench.methods import register_method\n"
        "from artbench.methods.torch.silknet import SilkNetMethod\n"
        'register_method("from_random_py", SilkNetMethod, description="a method")\n'
    )
    code, out, err = run_cli(capsys, "methods", "list", "--plugin", str(plugin), "--plugin", str(plugin))
    assert code == 0, err  # given twice: loaded once
    assert "from_random_py" in out
    assert sys.modules["random"].__file__ != str(plugin) and hasattr(sys.modules["random"], "shuffle")


@pytest.mark.parametrize("option", ["task", "--config"])
def test_a_file_that_is_not_utf8(option: str, tiny_task: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "t\xe9che"\n'.encode("latin-1"))
    if option == "task":
        code, _, err = run_quick(capsys, bad, "mtl", tmp_path / "out")
    else:
        code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out", "--config", str(bad))
    assert_one_line_error(code, err, "is not UTF-8 text")


def test_bad_split_fractions_name_the_task_file(tiny_task: Path, tmp_path: Path, capsys) -> None:
    task = tmp_path / "split.toml"
    task.write_text(tiny_task.read_text().replace("[split]\n", "[split]\nfractions = [0.5, 0.5, 0.5]\n"))
    code, _, err = run_quick(capsys, task, "mtl", tmp_path / "out")
    assert_one_line_error(code, err, f"{task}: split.fractions must be three positive numbers summing to 1")


def test_ctrl_c_before_training_says_nothing_was_written(tiny_task: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import artbench.preflight as preflight

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(preflight, "prepare_task", interrupted)
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out")
    assert code == 130 and "before training started; no run was written" in err
    assert not (tmp_path / "out").exists()


def test_bench_batch_larger_than_the_train_split(tiny_task: Path, capsys) -> None:
    args = ["bench", "--task", str(tiny_task), "--device", "cpu", "--batch-size", "1000", "--image-size", "32"]
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "--batch-size 1000 is larger than the")


def test_ctrl_c_while_mlflow_starts_the_run_leaves_a_summary(
    tiny_task: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from artbench.tracking.mlflow import MlflowTracker

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MlflowTracker, "start_run", interrupted)
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path)
    assert code == 130 and "0 finished seed(s) saved in" in err
    (run_dir,) = (tmp_path / "tiny-synth" / "mtl").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "incomplete" and summary["seeds_completed"] == []


def test_concurrent_cache_preparation(tmp_path: Path, monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from artbench.data.cache import prepare_cache
    from artbench.datasets.silknow_synth import silknow_synth_dataset
    from artbench.methods.torch.colour import colour_feature

    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path))
    dataset = silknow_synth_dataset(num_images=80, image_size=16)
    with ThreadPoolExecutor(3) as pool:
        feature = colour_feature(4)
        caches = list(pool.map(lambda _: prepare_cache(dataset, 24, features=[feature], workers=1), range(3)))
    for cache in caches[1:]:
        np.testing.assert_array_equal(cache.images, caches[0].images)
        np.testing.assert_array_equal(cache.features[feature.name], caches[0].features[feature.name])
    assert not list((tmp_path / "cache").rglob("*.tmp.npy"))


def test_odd_target_and_class_names_are_saved(collection: Path, tmp_path: Path, capsys) -> None:
    table = pd.read_csv(collection)
    table["place/origin"] = np.where(np.arange(len(table)) % 2, "$\\alpha_$", "日本 (Kyoto)")
    table.to_csv(collection, index=False)
    task = _csv_task(collection.parent, "place/origin")
    code, _, err = run_quick(capsys, task, "mtl", tmp_path / "out", "--tracking-uri", "none")
    assert code == 0, err
    (seed_dir,) = (tmp_path / "out" / "mine" / "mtl").glob("*/seed-1")
    assert (seed_dir / "confusion-place_origin.png").is_file()
    assert "Glyph" not in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('name = "material"', 'name = "overall"'), "'overall' is reserved"),
        (('name = "tiny-synth"', 'name = "../escape"'), "name '../escape' must be 1-100 letters"),
        (('name = "tiny-synth"', 'name = ""'), "name '' must be"),
        (('dataset = "silknow-synth"', 'dataset = "silknow-synth"\nmetrics = []'), "metrics is empty"),
    ],
)
def test_task_names_that_would_break_paths_or_results(
    edit: tuple[str, str], message: str, tiny_task: Path, tmp_path: Path, capsys
) -> None:
    task = tmp_path / "edited.toml"
    task.write_text(tiny_task.read_text().replace(*edit, 1))
    code, _, err = run_quick(capsys, task, "mtl", tmp_path / "out")
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape").exists()


def test_a_task_found_by_name_must_be_named_like_its_file(tiny_task: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "other.toml").write_text(tiny_task.read_text())  # name = "tiny-synth"
    monkeypatch.setenv("ARTBENCH_TASKS", str(tmp_path / "tasks"))
    code, _, err = run_cli(capsys, "run", "other", "mtl")
    assert_one_line_error(code, err, "name 'tiny-synth' differs from the file name")
    code, out, err = run_cli(capsys, "tasks", "list")  # the other tasks are still listed
    assert code == 0 and "silknow-synth" in out and "warning: skipped" in err and "differs from the file" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [("lr=inf", "lr=inf: must be a finite number"), ("image_size=100000", "image_size=100000: must be in [8, 2048]")],
)
def test_config_values_out_of_range(setting: str, message: str, tiny_task: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out", "--set", setting)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "out").exists()


def test_data_home_that_is_a_file(tiny_task: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "datafile").write_text("x")
    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "datafile"))
    code, _, err = run_cli(capsys, "datasets", "stats", str(tiny_task))
    assert_one_line_error(code, err, "is a file; point ARTBENCH_DATA at a folder")


def test_an_image_too_large_to_decode(collection: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from PIL import Image as PILImage

    monkeypatch.setenv("ARTBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)  # 16 x 16 > 2 x 100: PIL's bomb limit
    code, _, err = run_quick(capsys, _csv_task(collection.parent), "mtl", tmp_path / "out")
    assert_one_line_error(code, err, "is too large to decode safely")


def test_tracking_uri_that_is_a_plain_path(tiny_task: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_quick(capsys, tiny_task, "mtl", tmp_path / "out", "--tracking-uri", "./mlruns")
    assert_one_line_error(code, err, "is a plain path; MLflow 3 wants a database such as sqlite:///")


def test_ui_port_checks(tiny_task: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "ui", "--port", "99999")
    assert_one_line_error(code, err, "Invalid value for '--port'")
    (tmp_path / "mlflow.db").write_bytes(b"")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        code, _, err = run_cli(capsys, "ui", "--out", str(tmp_path), "--port", port)
    assert_one_line_error(code, err, f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.usefixtures("_restore_registries")
def test_a_plugin_that_exits(tmp_path: Path, capsys) -> None:
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(3)\n")
    code, _, err = run_cli(capsys, "methods", "list", "--plugin", str(tmp_path / "quits.py"))
    assert_one_line_error(code, err, "quits.py:2: SystemExit: 3")


@pytest.mark.usefixtures("_restore_registries")
def test_a_dataset_too_big_for_memory() -> None:
    from artbench.core.errors import ArtbenchError
    from artbench.data.task_data import build_dataset

    def huge(num_images: int = 1) -> None:
        raise MemoryError

    register_dataset("huge")(huge)
    with pytest.raises(ArtbenchError, match=r"task 'x': not enough memory to build dataset 'huge'"):
        build_dataset("huge", {"num_images": 10**10}, "task 'x'")


def test_an_eof_error_is_not_taken_for_ctrl_c(monkeypatch, capsys) -> None:
    """click turns EOFError into Abort; a truncated file read somewhere must not print "interrupted" (exit 130)."""
    import artbench.tasks

    def truncated(name: str):
        raise EOFError("Ran out of input")

    monkeypatch.setattr(artbench.tasks, "load_task", truncated)
    with pytest.raises(EOFError, match="Ran out of input"):
        run_cli(capsys, "run", "silknow-synth", "mtl")
    assert "interrupted" not in capsys.readouterr().err
