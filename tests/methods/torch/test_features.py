"""The frozen-feature cache: computed once per (dataset, backbone, weights, resolution, layer), float16 on disk with a
checksummed sidecar, rebuilt when stale or damaged; in-memory feature batches; `artbench bench --head-only`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from artbench.data.task_data import TaskData, prepare_task
from artbench.methods import RunContext
from artbench.methods.torch import features as F
from artbench.methods.torch.backbones import build_backbone
from artbench.methods.torch.batches import normalise
from artbench.methods.torch.heads import MultiHead, feature_batches, head_outputs
from artbench.tasks import load_task
from tests.conftest import run_cli

CPU = RunContext(torch.device("cpu"), description="test")


@pytest.fixture(scope="module")
def data(tiny_task: Path) -> TaskData:
    return prepare_task(load_task(str(tiny_task)))


def _expected(data: TaskData, rows: np.ndarray, size: int = 32) -> np.ndarray:
    """tiny_cnn features computed directly: the fixed random init (torch seed 0), eval mode, full precision."""
    torch.manual_seed(F.RANDOM_INIT_SEED)
    body = build_backbone("tiny_cnn", "none", 0).body.eval()
    images = torch.from_numpy(np.array(data.images(size).images[rows])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return body(normalise(images)).numpy()


def test_features_are_computed_once_and_match_the_backbone(data: TaskData) -> None:
    first = F.cached_features(data, "tiny_cnn", "none", 32, CPU, seed=1, batch_size=64)
    again = F.cached_features(data, "tiny_cnn", "none", 48, CPU, seed=2)  # another resolution: another file
    same = F.cached_features(data, "tiny_cnn", "none", 32, CPU, seed=2)  # another seed, same random backbone
    assert not same.built and same.path == first.path and again.path != first.path
    assert first.features.shape == (400, 128) and first.features.dtype == np.float16
    assert isinstance(same.features, np.memmap)
    rows = np.array([0, 7, 399])
    expected = _expected(data, rows)
    np.testing.assert_allclose(first.features[rows].astype(np.float32), expected, rtol=2e-3, atol=1e-7)
    meta = json.loads(first.path.with_suffix(".json").read_text())
    assert meta["sha256"] == F.file_sha256(first.path) and meta["shape"] == [400, 128]
    assert meta["key"] == F.feature_key(data, "tiny_cnn", "none", 32)
    assert meta["key"]["fingerprint"] == data.dataset.fingerprint and meta["key"]["layer"] == "pool"
    assert not [p for p in first.path.parent.iterdir() if ".tmp" in p.name]  # written atomically, nothing left


def test_key_follows_the_weights(data: TaskData, tmp_path: Path) -> None:
    torch.manual_seed(3)
    weights = tmp_path / "w.pt"
    torch.save(build_backbone("tiny_cnn", "none", -1).body.state_dict(), weights)
    key = F.feature_key(data, "tiny_cnn", str(weights), 32)
    assert key["weights"] == f"sha256:{F.file_sha256(weights)}"
    assert key != F.feature_key(data, "tiny_cnn", "none", 32)
    trained = F.cached_features(data, "tiny_cnn", str(weights), 32, CPU, seed=1)
    random = F.cached_features(data, "tiny_cnn", "none", 32, CPU, seed=1)
    assert trained.path != random.path and not np.array_equal(trained.features[:5], random.features[:5])


def test_features_of_images_decoded_by_another_cache_format_are_not_reused(
    data: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image cache's format says how files are decoded (EXIF orientation, alpha): features computed from an
    older decoding are another cache entry, not reused."""
    current = F.cached_features(data, "tiny_cnn", "none", 32, CPU, seed=1)
    monkeypatch.setattr(F, "CACHE_FORMAT", F.CACHE_FORMAT - 1)
    older = F.cached_features(data, "tiny_cnn", "none", 32, CPU, seed=1)
    assert older.built and older.path != current.path


def _rebuilt(data: TaskData, capsys: pytest.CaptureFixture[str]) -> tuple[F.FeatureCache, str]:
    capsys.readouterr()
    cache = F.cached_features(data, "tiny_cnn", "none", 32, CPU, seed=1)
    return cache, capsys.readouterr().err


def test_damaged_or_stale_caches_are_rebuilt(data: TaskData, capsys: pytest.CaptureFixture[str]) -> None:
    cache = F.cached_features(data, "tiny_cnn", "none", 32, CPU, seed=1)
    good = np.array(cache.features)
    with cache.path.open("r+b") as f:  # flip bytes in the last row
        f.seek(-8, os.SEEK_END)
        f.write(b"\xff" * 8)
    rebuilt, err = _rebuilt(data, capsys)
    assert rebuilt.built and "checksum mismatch" in err
    np.testing.assert_array_equal(rebuilt.features, good)

    sidecar = cache.path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "key": {**meta["key"], "format": 0}}))
    os.utime(cache.path, ns=(0, 0))  # a new mtime: the file is checked again
    rebuilt, err = _rebuilt(data, capsys)
    assert rebuilt.built and "stale" in err

    sidecar.unlink()  # an interrupted write never got its sidecar
    rebuilt, _ = _rebuilt(data, capsys)
    assert rebuilt.built and sidecar.is_file()
    assert not _rebuilt(data, capsys)[0].built


def test_feature_batches_cover_each_row_once() -> None:
    features = torch.arange(20, dtype=torch.float16).reshape(10, 2)
    labels = [torch.arange(10)]
    rows = np.array([1, 3, 4, 6, 8, 9])
    seen = list(feature_batches(features, labels, rows, 4, np.random.default_rng(0)))
    assert sorted(int(y) for b in seen for y in b.labels[0]) == [1, 3, 4, 6, 8, 9]
    assert [len(b.features) for b in seen] == [4, 2] and seen[0].features.dtype == torch.float32
    np.testing.assert_array_equal(seen[0].features[:, 0].numpy(), 2 * seen[0].labels[0].numpy())
    shuffled = list(feature_batches(features, labels, rows[:5], 2, np.random.default_rng(0)))
    assert [len(b.features) for b in shuffled] == [2, 2]  # a last batch of one sample is dropped in training
    head = MultiHead(2, [3], shared_units=4)
    outputs = head_outputs(head, features, np.array([6, 1]), batch_size=1)[0]
    np.testing.assert_allclose(outputs, head(features[[6, 1]].float())[0].detach().numpy(), rtol=1e-6)


def test_head_only_bench_prints_the_speed_up(tiny_task: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "bench", "--head-only", "--task", str(tiny_task), "--image-size", "32", "--batch-size", "16",
        "--steps", "2", "--warmup", "0", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert "head on cached features" in out and "frozen forward + head" in out and "speed-up" in out
