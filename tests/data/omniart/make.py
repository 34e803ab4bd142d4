"""Fake OmniArt v3 dump in the real 22-column layout (research notes §3.2) plus tiny ``img_300x/<omni_id>.jpg``.

32 rows, RFC-4180 quoted (titles with commas, palette lists), no leading index column (the full dump has none):

* ``vincent van gogh`` 12 images, ``o u i s e   b o u r g e o i s l`` (a MoMA name with spaced letters) 8 and
  ``claude monet`` 5; ``xynphix`` 2 (no year, general type ``Unknown``); 3 rows by ``unknown`` and one with an
  empty artist; the last row repeats the first row's ``omni_id``;
* school ``unknown`` in three spellings, one empty school; one ``creation_year`` of ``unknown``.

The image of :data:`CORRUPT_ID` is not a JPEG and the one of :data:`MISSING_ID` is absent.

Run ``python -m tests.data.omniart.make DIR`` to write the fixture into DIR.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

COLUMNS = (
    "id",
    "artwork_name",
    "artist_full_name",
    "artist_first_name",
    "artist_last_name",
    "creation_year",
    "century",
    "source_url",
    "image_url",
    "collection_origins",
    "artwork_type",
    "school",
    "original_id_in_collection",
    "created_at",
    "last_modified",
    "omni_id",
    "created_by_id",
    "general_type",
    "geocoded",
    "color_pallete",
    "dominant_color",
    "palette_count",
)
# artist, first, last, number of images, first year (one per image) or None, collection, artwork type,
# general type, schools (cycled)
ARTISTS = (
    (
        "vincent van gogh",
        "vincent",
        "van gogh",
        12,
        1880,
        "Web Gallery of Art '17",
        "landscape",
        "painting",
        ("dutch",),
    ),
    (
        "o u i s e   b o u r g e o i s l",
        "o u i s e",
        "b o u r g e o i s l",
        8,
        1940,
        "MOMA - New York",
        "print",
        "print",
        ("unknown", "Unknown", "UNKNOWN", ""),
    ),
    ("claude monet", "claude", "monet", 5, 1895, "WikiArts 17", "impressionism", "painting", ("french",)),
    ("xynphix", "xynphix", "xynphix", 2, None, "DeviantArt", "painting", "Unknown", ("modern",)),
    ("unknown", "unknown", "unknown", 3, 1700, "The Met 17", "drawing", "drawing", ("italian",)),
    ("", "", "", 1, 1650, "Brill Iconclass Arkyves", "emblem pictura", "print", ("Italia",)),
)
UNKNOWN_YEAR_ID = "1022"  # a monet whose creation_year reads "unknown"
CORRUPT_ID = "1020"
MISSING_ID = "1021"


def rows() -> list[dict[str, str]]:
    """The dump rows, in file order."""
    out: list[dict[str, str]] = []
    for artist, first, last, count, year, origin, fine, general, schools in ARTISTS:
        for k in range(count):
            omni_id = str(1000 + len(out))
            creation = "" if year is None else f"{year + k}.0"
            if omni_id == UNKNOWN_YEAR_ID:
                creation = "unknown"
            century = f"{(year + k) // 100 + 1}.0" if creation.endswith(".0") else ""
            out.append(
                {
                    "id": f"00000000-0000-4000-8000-{len(out):012d}",
                    "artwork_name": f'study {k}, with "quotes" and a comma ({artist or "anonymous"})',
                    "artist_full_name": artist,
                    "artist_first_name": first,
                    "artist_last_name": last,
                    "creation_year": creation,
                    "century": century,
                    "source_url": f"https://example.org/art/{omni_id}",
                    "image_url": f"https://example.org/img/{omni_id}.jpg",
                    "collection_origins": origin,
                    "artwork_type": fine,
                    "school": schools[k % len(schools)],
                    "original_id_in_collection": str(k),
                    "created_at": "2017-11-15",
                    "last_modified": "2018-06-19",
                    "omni_id": omni_id,
                    "created_by_id": "1",
                    "general_type": general,
                    "geocoded": "f",
                    "color_pallete": "[u'#d6cdc8', u'#b5aba7', u'#998f8b']",
                    "dominant_color": "#221812",
                    "palette_count": "[3686, 5229, 6630]",
                }
            )
    out.append(dict(out[0], id="00000000-0000-4000-8000-999999999999"))  # the same image listed twice
    return out


def make(root: Path, csv_name: str = "omniart_v3_datadump.csv") -> Path:
    """Write the dump and the images into ``root`` (created if needed); return the dump's path."""
    root = Path(root)
    images = root / "img_300x"
    images.mkdir(parents=True, exist_ok=True)
    data = rows()
    path = root / csv_name
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)
    rng = np.random.default_rng(0)
    for omni_id in dict.fromkeys(row["omni_id"] for row in data):
        if omni_id == CORRUPT_ID:
            (images / f"{omni_id}.jpg").write_bytes(b"\xff\xd8 truncated")
        elif omni_id != MISSING_ID:
            Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(images / f"{omni_id}.jpg", "JPEG")
    return path


if __name__ == "__main__":
    print(make(Path(sys.argv[1])))
