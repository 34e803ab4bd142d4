"""What is registered, as users see it: methods (with parameters), metrics, datasets (with metadata)."""

import json

import pandas as pd
import pytest

from tests.conftest import run_cli


def test_methods_show_prints_parameters_defaults_and_docs(capsys) -> None:
    code, out, _ = run_cli(capsys, "methods", "show", "mtl_fo_rall")
    assert code == 0
    assert "SilkNetMethod" in out and "Dorozynski 2023, Table 3" in out
    assert "gamma" in out and "2.0 *" in out  # fixed by the recipe
    assert "augment" in out and "the paper uses none" in out
    assert "a task's [defaults] cannot change it" in out
    code, _, err = run_cli(capsys, "methods", "show", "nope")
    assert code == 2 and "unknown method 'nope'" in err


def test_metrics_list_names_kinds(capsys) -> None:
    code, out, _ = run_cli(capsys, "metrics", "list")
    assert code == 0
    for name in ("f1_underrepresented", "map_macro", "ap11_macro", "f2_samples", "mae", "within_50"):
        assert name in out


def test_datasets_list_and_info(capsys) -> None:
    code, out, _ = run_cli(capsys, "datasets", "list")
    assert code == 0 and "silknow-synth" in out and "silknow" in out and "csv" in out
    code, out, _ = run_cli(capsys, "datasets", "info", "silknow")
    assert code == 0
    assert "Rei" in out and "CC BY 4.0" in out and "official" in out
    assert "d4b5f2d122daae5bd8024a4262579db1" in out  # a collection file's md5
    assert "artbench datasets download silknow" in out
    code, _, err = run_cli(capsys, "datasets", "download", "csv")
    assert code == 2 and "cannot be downloaded" in err


def test_stats_json_by_kind(tmp_path, capsys) -> None:
    pd.DataFrame(
        {
            "image": ["a", "b", "c", "d", "e"],
            "type": ["print|drawing", "print", "", "painting|print", "print"],
            "year": ["1600", "1650", "", "1700", "x"],
        }
    ).to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "t.toml").write_text(
        'name = "t"\ndataset = "csv"\n[dataset_options]\npath = "c.csv"\n'
        '[[targets]]\nname = "type"\nkind = "multilabel"\n[[targets]]\nname = "year"\nkind = "regression"\n'
    )
    code, _, err = run_cli(capsys, "datasets", "stats", str(tmp_path / "t.toml"), "--json")
    assert code == 2 and "regression target 'year': cells that are not numbers: 'x'" in err
    frame = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    frame.loc[4, "year"] = "1750"
    frame.to_csv(tmp_path / "c.csv", index=False)
    code, out, _ = run_cli(capsys, "datasets", "stats", str(tmp_path / "t.toml"), "--json")
    assert code == 0
    stats = json.loads(out)["targets"]
    ml = stats["type"]
    assert ml["class_counts"] == {"drawing": 1, "painting": 1, "print": 4}
    assert ml["labelled"] == 4 and ml["label_cardinality"] == pytest.approx(6 / 4)
    assert ml["label_density"] == pytest.approx(6 / 4 / 3) and ml["imbalance_ratio"] == 4.0
    assert ml["underrepresented"] == ["drawing", "painting"]  # ζ = 1/6 < 1/3
    year = stats["year"]
    assert (year["count"], year["min"], year["max"], year["mean"]) == (4, 1600.0, 1750.0, 1675.0)
    assert year["std"] == pytest.approx(pd.Series([1600, 1650, 1700, 1750]).std())
    assert sum(year["histogram"]["counts"]) == 4
    code, out, _ = run_cli(capsys, "datasets", "stats", str(tmp_path / "t.toml"))
    assert code == 0 and "type (multilabel)" in out and "year: 4 values in [1600.0, 1750.0]" in out
