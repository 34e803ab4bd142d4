"""Loading task files: lookup by name or path, and checks against the method and metric registries."""

import pytest

from artbench.core.errors import ArtbenchError
from artbench.methods import METHODS
from artbench.tasks import list_tasks, load_task


def test_shipped_tasks_and_methods_load() -> None:
    task = load_task("silknow-synth")
    assert task.target_names == ["place", "material", "time", "technique", "depiction"]
    assert task.target("place").background == ("bg place",)
    assert task.defaults["backbone"] == "tiny_cnn"
    assert "silknow-synth" in [t.name for t in list_tasks()]
    with pytest.raises(ArtbenchError, match=r"unknown task 'silk'; valid choices: .*silknow-synth"):
        load_task("silk")
    for name in ("stl", "mtl", "mtl_fo", "mtl_rsem", "mtl_rall", "mtl_fo_rsem", "mtl_fo_rall", "colour_hist_logreg"):
        assert name in METHODS


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('metrics = ["auc"]', r"unknown metric\(s\) \['auc'\]"),
        ("[defaults]\nlearning_rate = 1.0", r"\[defaults\] key\(s\) \['learning_rate'\] are parameters of no"),
    ],
)
def test_task_files_are_checked_against_the_registries(tmp_path, extra: str, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(f'name = "t"\ndataset = "csv"\n{extra}\n[[targets]]\nname = "place"\n')
    with pytest.raises(ArtbenchError, match=f"{path}: {message}"):
        load_task(str(path))


def test_every_shipped_task_is_valid() -> None:
    problems: list[str] = []
    list_tasks(problems)
    assert problems == []
