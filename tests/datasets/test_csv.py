"""The generic CSV adapter and the sample-table contract."""

import pandas as pd
import pytest

from artbench.core.dataset import Dataset
from artbench.core.errors import ArtbenchError
from artbench.datasets.csv import csv_dataset, read_csv_table


def test_csv_adapter_keeps_na_as_a_label(tmp_path) -> None:
    (tmp_path / "c.csv").write_text("file,obj,place,material\na.jpg,o1,NA,silk\nb.jpg,o1,,\nc.jpg,o2,None,wool\n")
    table = read_csv_table(tmp_path / "c.csv", image_col="file", group_col="obj", targets=["place", "material"])
    assert table["place"].tolist()[0] == "NA" and pd.isna(table["place"][1]) and table["place"][2] == "None"
    assert table["image"][0] == str((tmp_path / "a.jpg").resolve())
    assert table["group"].tolist() == ["o1", "o1", "o2"]
    ds = csv_dataset(str(tmp_path / "c.csv"), image_col="file")
    assert set(ds.table.columns) == {"image", "group", "obj", "place", "material"}
    assert ds.table["group"].tolist() == ds.table["image"].tolist()  # no group column: one group per image


def test_csv_errors_are_clear(tmp_path) -> None:
    with pytest.raises(ArtbenchError, match="does not exist"):
        read_csv_table(tmp_path / "none.csv")
    (tmp_path / "c.csv").write_text("image,place\na.jpg,FR\n")
    with pytest.raises(ArtbenchError, match=r"no column\(s\) \['material'\]; its columns are: image, place"):
        read_csv_table(tmp_path / "c.csv", targets=["material"])
    with pytest.raises(ArtbenchError, match="split column has values"):
        Dataset("x", pd.DataFrame({"image": ["a"], "group": ["g"], "split": ["training"]}))


def test_fingerprint_changes_with_labels(tmp_path) -> None:
    table = pd.DataFrame({"image": [str(tmp_path / "a.png")], "group": ["g"], "t": ["x"]})
    a = Dataset("d", table).fingerprint
    assert a == Dataset("d", table.copy()).fingerprint
    assert a != Dataset("d", table.assign(t=["y"])).fingerprint


def test_an_image_without_a_group_is_its_own_group(tmp_path) -> None:
    (tmp_path / "c.csv").write_text("image,obj,place\na.jpg,r1,FR\nb.jpg,,FR\nc.jpg,,ES\nd.jpg,r1,ES\n")
    table = read_csv_table(tmp_path / "c.csv", group_col="obj", targets=["place"])
    assert table["group"].tolist() == ["r1", table["image"][1], table["image"][2], "r1"]


def test_an_empty_split_is_refused_before_any_image_is_read(tmp_path) -> None:
    from artbench.core.task import parse_task
    from artbench.data.task_data import prepare_task

    (tmp_path / "c.csv").write_text("image,split,place\na.jpg,train,FR\nb.jpg,test,ES\nc.jpg,train,ES\n")
    task = parse_task(
        {
            "name": "t",
            "dataset": "csv",
            "dataset_options": {"path": str(tmp_path / "c.csv"), "split_col": "split"},
            "split": {"protocol": "official"},
            "targets": [{"name": "place"}],
        },
        "t.toml",
    )
    with pytest.raises(ArtbenchError, match="task 't': the val split is empty"):
        prepare_task(task)
