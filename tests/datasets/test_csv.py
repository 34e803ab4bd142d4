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


def test_repeated_column_names_are_refused(tmp_path) -> None:
    """pandas would rename the second ``place`` to ``place.1`` and the task would train on the first one."""
    (tmp_path / "c.csv").write_text("image,place,place\na.jpg,FR,ES\n")
    with pytest.raises(ArtbenchError, match=r"column name\(s\) \['place'\] appear more than once"):
        read_csv_table(tmp_path / "c.csv")


@pytest.mark.parametrize("name", ["../../x", "/abs/path", ".hidden", "a/b"])
def test_a_dataset_name_cannot_place_the_cache_outside_the_data_home(tmp_path, name: str) -> None:
    (tmp_path / "c.csv").write_text("image,place\na.jpg,FR\n")
    with pytest.raises(ArtbenchError, match="must be 1-100 letters"):
        csv_dataset(str(tmp_path / "c.csv"), name=name)


def _task(tmp_path, rows: str, **extra):
    from artbench.core.task import parse_task

    (tmp_path / "c.csv").write_text(rows)
    return parse_task(
        {
            "name": "t",
            "dataset": "csv",
            "dataset_options": {"path": str(tmp_path / "c.csv"), "group_col": "obj"},
            "targets": [{"name": "place"}],
            **extra,
        },
        "t.toml",
    )


def test_an_image_in_two_groups_is_refused(tmp_path) -> None:
    from artbench.data.task_data import prepare_task

    rows = (
        "image,obj,place\n" + "".join(f"{i}.jpg,o{i},{'FR' if i % 2 else 'ES'}\n" for i in range(30)) + "3.jpg,o9,FR\n"
    )
    with pytest.raises(ArtbenchError, match=r"1 image file\(s\) belong to more than one group \(first: .*3.jpg in"):
        prepare_task(_task(tmp_path, rows))


def test_a_single_class_target_is_refused(tmp_path) -> None:
    from artbench.data.task_data import prepare_task

    rows = "image,obj,place\n" + "".join(f"{i}.jpg,o{i},FR\n" for i in range(30))
    with pytest.raises(ArtbenchError, match=r"target\(s\) \['place'\] have a single class"):
        prepare_task(_task(tmp_path, rows))


def test_an_empty_split_from_rare_classes_says_so(tmp_path) -> None:
    """500 classes over 600 single-image groups: rare classes take every group for train and test."""
    from artbench.data.task_data import prepare_task

    rows = "image,obj,place\n" + "".join(f"{i}.jpg,o{i},c{i % 500}\n" for i in range(600))
    with pytest.raises(
        ArtbenchError, match=r"the val split is empty .*500 class\(es\) are held by fewer than 3 groups"
    ):
        prepare_task(_task(tmp_path, rows))


def test_the_fingerprint_names_the_same_data_wherever_it_lives(tmp_path) -> None:
    """Two copies of a collection in different folders, written at different times, fingerprint alike."""
    import os
    import shutil

    first = tmp_path / "a"
    (first / "img").mkdir(parents=True)
    for i in range(3):
        (first / "img" / f"{i}.png").write_bytes(bytes(10 + i))
    (first / "c.csv").write_text("image,place\nimg/0.png,FR\nimg/1.png,ES\nimg/2.png,FR\n")
    second = tmp_path / "elsewhere" / "b"
    shutil.copytree(first, second)
    os.utime(second / "img" / "0.png", (1, 1))
    a, b = csv_dataset(str(first / "c.csv"), name="c"), csv_dataset(str(second / "c.csv"), name="c")
    assert a.fingerprint == b.fingerprint
    (second / "img" / "1.png").write_bytes(bytes(99))
    assert csv_dataset(str(second / "c.csv"), name="c").fingerprint != a.fingerprint
