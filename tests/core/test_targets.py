"""Target kinds: encoding, missing labels and decoding for multiclass, multilabel and regression."""

import numpy as np
import pandas as pd
import pytest

from artbench.core.errors import ArtbenchError
from artbench.core.targets import MISSING, TargetSpec, encode_targets


def test_multiclass_round_trip_with_background() -> None:
    spec = TargetSpec("place", background=("bg place",)).with_classes_from(
        pd.Series(["FR", "NA", None, "bg place", "ES"])
    )
    assert spec.classes == ("ES", "FR", "NA") and spec.num_outputs == 4
    codes = spec.encode(pd.Series(["FR", None, "bg place", "NA"]))
    assert codes.tolist() == [1, -1, 3, 2]
    assert spec.known(codes).tolist() == [True, False, True, True]
    assert spec.decode(codes) == ["FR", "", "(background)", "NA"]
    with pytest.raises(ArtbenchError, match="not among its classes"):
        spec.encode(pd.Series(["DE"]))


def test_multilabel_encoding() -> None:
    spec = TargetSpec("type", "multilabel").with_classes_from(pd.Series(["print|drawing", None, "painting", "print"]))
    assert spec.classes == ("drawing", "painting", "print") and spec.num_outputs == 3
    codes = spec.encode(pd.Series(["print|drawing", None, " painting | print ", "print"]))
    assert codes.dtype == np.int8
    assert codes.tolist() == [[1, 0, 1], [MISSING] * 3, [0, 1, 1], [0, 0, 1]]
    assert spec.known(codes).tolist() == [True, False, True, True]
    assert spec.decode(codes) == ["drawing|print", "", "painting|print", "print"]
    with pytest.raises(ArtbenchError, match="not among its classes or background: sculpture"):
        spec.encode(pd.Series(["print|sculpture"]))


def test_regression_encoding() -> None:
    spec = TargetSpec("year", "regression")
    assert spec.with_classes_from(pd.Series(["1"])) is spec and spec.num_outputs == 1
    values = spec.encode(pd.Series(["1650", None, "-300.5"]))
    assert np.isnan(values[1]) and values[[0, 2]].tolist() == [1650.0, -300.5]
    assert spec.decode(values) == ["1650.0", "", "-300.5"]
    with pytest.raises(ArtbenchError, match="cells that are not numbers: 'circa 1650'"):
        spec.encode(pd.Series(["circa 1650"]))


def test_encode_targets_keeps_order() -> None:
    table = pd.DataFrame({"a": ["x", "y"], "b": ["1", "2"]})
    specs = [TargetSpec("a", classes=("x", "y")), TargetSpec("b", "regression")]
    a, b = encode_targets(table, specs)
    assert a.tolist() == [0, 1] and b.tolist() == [1.0, 2.0]
