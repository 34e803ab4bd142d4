"""Fake iMet 2019/2020 folders in the real Kaggle layout (research notes §4.2): ``labels.csv``, ``train.csv``,
``train/<id>.png``.

The 2020 attribute names are real rows of the Kaggle labels.csv (with their real ids), among them the quoted
names with ``"`` and a culture with a ``;`` and two spaces; the 2019 names are in that release's prefixes. Images
are tiny random PNGs; one is corrupt and one listed in ``train.csv`` has no file, unless ``bad_images=False``.

Run ``python -m tests.data.imet.make OUT_DIR`` to look at one.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

LABELS = {
    2019: {
        0: "culture::american",
        1: "culture::british",
        2: "culture::french",
        3: "tag::flowers",
        4: "tag::men",
        5: "tag::women",
        6: "tag::landscapes",
    },
    2020: {
        23: "country::egypt",
        96: "country::united states",
        124: "culture::american",
        436: "culture::italian (venice);  innsbruck",
        592: "culture::peru; central coast",
        781: "dimension::large",
        783: "dimension::small",
        786: 'medium::"tinned" surface',
        2406: 'medium::so-called "mina\'i" ware',
        1856: "medium::oil on canvas",
        2997: "tags::flowers",
        3170: "tags::men",
        3465: "tags::women",
    },
}
ID_HEX_DIGITS = {2019: 16, 2020: 32}


class FakeImet(NamedTuple):
    ids: list[str]
    attributes: list[list[int]]
    corrupt: str | None
    missing: str | None


def draw_attributes(year: int, rng: np.random.Generator) -> list[int]:
    """One image's attributes: always a tag; a culture for about two images in three; 2020 adds the rest."""
    by_prefix: dict[str, list[int]] = {}
    for attribute_id, name in LABELS[year].items():
        by_prefix.setdefault(name.split("::")[0], []).append(attribute_id)
    tag = "tags" if year == 2020 else "tag"
    chosen = list(rng.choice(by_prefix[tag], size=int(rng.integers(1, 3)), replace=False))
    optional = {"culture": 0.65, "country": 0.4, "dimension": 0.5, "medium": 0.6}
    for prefix, share in optional.items():
        if prefix in by_prefix and rng.random() < share:
            chosen.append(rng.choice(by_prefix[prefix]))
    return sorted(int(a) for a in chosen)


def make(root: Path, year: int, num_images: int = 40, seed: int = 0, bad_images: bool = True) -> FakeImet:
    """Write a fake iMet ``year`` folder at ``root``; returns the image ids, their attributes and the bad images."""
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")  # quotes a name only when it holds '"', as Kaggle's file does
        writer.writerow(["attribute_id", "attribute_name"])
        writer.writerows(sorted(LABELS[year].items()))
    ids = [rng.bytes(ID_HEX_DIGITS[year] // 2).hex() for _ in range(num_images)]
    attributes = [draw_attributes(year, rng) for _ in ids]
    lines = ["id,attribute_ids"] + [f"{i},{' '.join(map(str, a))}" for i, a in zip(ids, attributes, strict=True)]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    for image_id in ids:
        pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "train" / f"{image_id}.png")
    corrupt = missing = None
    if bad_images:
        corrupt, missing = ids[1], ids[2]
        (root / "train" / f"{corrupt}.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG any more")
        (root / "train" / f"{missing}.png").unlink()
    return FakeImet(ids, attributes, corrupt, missing)


if __name__ == "__main__":
    for year in LABELS:
        make(Path(sys.argv[1]) / f"imet{year}", year)
