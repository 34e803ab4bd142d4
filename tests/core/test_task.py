"""Task files: structural validation with errors naming the file and the key."""

import pytest

from artbench.core.errors import ArtbenchError
from artbench.core.task import parse_task

BASE = {"name": "t", "dataset": "csv", "targets": [{"name": "place"}]}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"targets": [{"name": "p", "kind": "ordinal"}]}, "unknown kind 'ordinal'"),
        ({"targets": [{"name": "p", "classes": "a"}]}, "must be list"),
        ({"targets": [{"name": "p", "colour": 1}]}, r"targets\[0\]: unknown key"),
        ({"targets": [{"name": "image"}]}, r"targets\[0\]: 'image' is a reserved column"),
        ({"targets": [{"name": "y", "kind": "regression", "classes": ["a"]}]}, "a regression target has no classes"),
        ({"targets": [{"name": "y", "kind": "multilabel", "background": ["x"]}]}, "multiclass targets only"),
        ({"targets": [{"name": "p"}, {"name": "p"}]}, "duplicate target names"),
        ({"targets": [{"name": "overall"}]}, "'overall' is reserved"),
        ({"split": {"protocol": "random"}}, "unknown split protocol"),
        ({"split": {"fractions": [0.5, 0.5]}}, "three positive numbers"),
        ({"split": {"seed": -1}}, r"split.seed must be an integer in \[0, 2\*\*32\), got -1"),
        ({"metrics": []}, "metrics is empty"),
        ({"metadata": ["place"]}, r"metadata columns \['place'\] are targets"),
        ({"underrepresented": "test"}, "underrepresented must be one of dataset, train"),
        ({"name": 3}, "name must be str"),
        ({"name": "../escape"}, "must be 1-100 letters"),
    ],
)
def test_task_validation_errors(patch: dict, message: str) -> None:
    with pytest.raises(ArtbenchError, match=message):
        parse_task({**BASE, **patch}, "t.toml")


def test_kinds_and_options_are_parsed() -> None:
    task = parse_task(
        {
            **BASE,
            "targets": [
                {"name": "type", "kind": "multilabel", "separator": ";"},
                {"name": "year", "kind": "regression"},
            ],
            "metadata": ["genre"],
            "underrepresented": "train",
        },
        "t.toml",
    )
    assert [(t.kind, t.separator) for t in task.targets] == [("multilabel", ";"), ("regression", "|")]
    assert task.metadata == ("genre",) and task.underrepresented == "train"
    assert parse_task(BASE, "t.toml").underrepresented == "dataset"  # SilkNet Table 2's population
