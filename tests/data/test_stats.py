"""`artbench datasets stats` fed SilkNet's Table 1 reproduces Table 2 and the §4 label percentages."""

import json

import numpy as np
import pandas as pd
import pytest

from artbench.data.stats import imbalance_ratio, underrepresented_mask
from artbench.datasets import silknow_reference as ref
from tests.conftest import run_cli

# Printed in Dorozynski 2023: Table 2 (K_m, |M_m|, IR) and §4 (labelled share in %).
TABLE2 = {
    "place": (29, 22, 190.4),
    "time": (7, 5, 232.0),
    "technique": (9, 5, 105.6),
    "material": (3, 2, 7.0),
    "depiction": (8, 7, 32.2),
}
SECTION4 = {"place": 73.1, "material": 72.3, "time": 58.0, "technique": 32.7, "depiction": 7.0}


@pytest.fixture(scope="module")
def table1_csv(tmp_path_factory: pytest.TempPathFactory):
    """48,912 rows whose target columns hold exactly Table 1's counts (background rows included)."""
    columns = {"image": [f"img{i}.jpg" for i in range(ref.NUM_IMAGES)]}
    for target in ref.TARGETS:
        values = [c for c, k in ref.CLASS_COUNTS[target].items() for _ in range(k)]
        values += [ref.BACKGROUND_LABELS[target]] * ref.BACKGROUND_COUNTS[target]
        columns[target] = values + [""] * (ref.NUM_IMAGES - len(values))
    path = tmp_path_factory.mktemp("table1") / "table1.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_stats_json_reproduces_table2_and_section4(table1_csv, capsys) -> None:
    args = ["datasets", "stats", str(table1_csv), "--targets", ",".join(ref.TARGETS), "--json"]
    for target in ref.TARGETS:
        args += ["--background", f"{target}={ref.BACKGROUND_LABELS[target]}"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    stats = json.loads(out)
    assert stats["num_samples"] == 48_912
    for target, (k, under, ir) in TABLE2.items():
        s = stats["targets"][target]
        assert s["kind"] == "multiclass"
        assert (s["num_classes"], s["num_underrepresented"], round(s["imbalance_ratio"], 1)) == (k, under, ir)
        assert round(100 * s["labelled_fraction"], 1) == SECTION4[target]
        assert s["background"] == ref.BACKGROUND_COUNTS[target]
        assert s["labelled"] + s["background"] + s["missing"] == 48_912
        assert len(s["underrepresented"]) == under
    assert stats["targets"]["material"]["underrepresented"] == ["metal thread", "vegetal fibre"]
    assert stats["targets"]["place"]["class_counts"]["GB"] == 7_998


def test_stats_human_output_and_errors(table1_csv, capsys) -> None:
    code, out, _ = run_cli(capsys, "datasets", "stats", str(table1_csv), "--targets", "material")
    assert code == 0 and "material" in out and "7.0" in out
    code, _, err = run_cli(capsys, "datasets", "stats", str(table1_csv))
    assert code == 2 and "--targets" in err
    code, _, err = run_cli(capsys, "datasets", "stats", str(table1_csv), "--targets", "colour")
    assert code == 2 and "colour" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "datasets", "stats", "no-such-thing")
    assert code == 2 and "neither a task" in err


def test_stats_of_a_task_file_apply_its_background(table1_csv, tmp_path, capsys) -> None:
    task = tmp_path / "table1-task.toml"
    bg = ref.BACKGROUND_LABELS["place"]
    task.write_text(
        f'name = "t1"\ndataset = "csv"\n[dataset_options]\npath = "{table1_csv}"\n'
        f'[[targets]]\nname = "place"\nbackground = ["{bg}"]\n'
    )
    code, out, _ = run_cli(capsys, "datasets", "stats", str(task), "--json")
    place = json.loads(out)["targets"]["place"]
    assert code == 0 and (place["num_classes"], place["num_underrepresented"]) == TABLE2["place"][:2]


def test_eq9_and_underrepresented_by_hand() -> None:
    assert imbalance_ratio(np.array([10, 5, 2])) == 5.0
    assert imbalance_ratio(np.array([4, 0])) == float("inf")
    # K = 4 → threshold 1/4: relative frequencies 0.5, 0.3, 0.15, 0.05
    assert underrepresented_mask(np.array([50, 30, 15, 5])).tolist() == [False, False, True, True]


@pytest.mark.usefixtures("restore_registries")
def test_stats_of_a_dataset_name_honour_targets_and_background(table1_csv, capsys) -> None:
    from artbench.core.dataset import Dataset, register_dataset
    from artbench.datasets.csv import read_csv_table

    register_dataset("table1")(lambda: Dataset("table1", read_csv_table(table1_csv, targets=ref.TARGETS)))
    bg = ref.BACKGROUND_LABELS["time"]
    args = ["datasets", "stats", "table1", "--targets", "time", "--background", f"time={bg}", "--json"]
    code, out, _ = run_cli(capsys, *args)
    time = json.loads(out)["targets"]
    assert code == 0 and list(time) == ["time"]
    assert (time["time"]["num_classes"], time["time"]["num_underrepresented"]) == TABLE2["time"][:2]
    assert time["time"]["background"] == ref.BACKGROUND_COUNTS["time"]
    code, out, _ = run_cli(capsys, "datasets", "stats", "table1", "--json")  # no --background: bg is a class
    assert code == 0 and json.loads(out)["targets"]["time"]["num_classes"] == TABLE2["time"][0] + 1
    code, _, err = run_cli(capsys, "datasets", "stats", "table1", "--background", "colour=x")
    assert code == 2 and "colour" in err and len(err.strip().splitlines()) == 1
