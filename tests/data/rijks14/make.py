"""Fake Rijks'14 release in the real layout (research notes §2.2): ``rijksgt.mat``, ``jpg2/``, ``xml2/``.

``rijksgt.mat`` has the real struct ``gt`` with the real field names and MATLAB types (``set`` int16, ``C``
uint16, ``T``/``M`` uint8, ``Y`` int16, cell arrays of names, ...; ``det`` is a plain struct here because
scipy cannot write the MATLAB ``RandStream`` object of the real file). 62 images in six creator blocks, designed
so that the challenge filters (notes §2.3, at least 10 test images and presence in every set) keep:

* creators ``abb\\x1a\\x1a, hendrik`` (SUB-byte name) and ``everdingen, caesar botius van``; ``maris, matthijs``
  (9 test images), ``rembrandt harmensz. van rijn`` (no val image), ``anoniem`` and ``unknown`` go to ``rest``;
* types ``prent`` and ``schilderij`` (``tekening`` has 9 test images, ``aak`` only a train image, two types have
  no data as in the real file);
* materials ``olieverf``, ``doek``, ``papier`` and ``chine coll\\x1a\\x1a`` (``inkt`` has no val image; the empty
  name at index 1 is used by the ``unknown`` block only);
* years: 1655, none (span 100), 1849.5, ``[0 0]``, 1675 (start > end) and -475 (BC) per block.

``jpg2/`` has a tiny JPEG for every row except :data:`MISSING_ROW`; the file of :data:`CORRUPT_ROW` is not a JPEG.
``xml2/`` has an OAI-PMH Dublin-Core record for every row (hand-made after the notes: no real record is public).

Run ``python -m tests.data.rijks14.make DIR`` to write the fixture into DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

CREATOR_NAMES = (
    "abb\x1a\x1a, hendrik",
    "everdingen, caesar botius van",
    "maris, matthijs",
    "rembrandt harmensz. van rijn",
    "anoniem",
    "unknown",
)
TYPE_NAMES = ("aak", "prent", "schilderij", "calotypienegatief", "tekening", "papier")
MATERIAL_NAMES = ("", "olieverf", "doek", "papier", "chine coll\x1a\x1a", "inkt")

# One block per creator (1-based index into CREATOR_NAMES): images per set (train, val, test), 1-based type and
# material ids (a train-only type on the first row), [start, end] year, and the XML record's creator, date and formats.
BLOCKS = (
    (1, (2, 1, 10), (3, 2), (2, 3), (1650, 1660), ("schilder: Abbé, Hendrik",), "1650 – 1660", ()),
    (2, (1, 1, 10), (3,), (2, 3), (1600, 1700), ("schilder: Everdingen, Caesar Boëtius van",), "1600 – 1700", ()),
    (
        3,
        (1, 1, 9),
        (2, 5),
        (4,),
        (1800, 1899),
        ("prentmaker: Maris, Matthijs", "naar ontwerp van: Heemskerck, Maarten van"),
        "1800 – 1899",
        ("techniek: etsen",),
    ),
    (4, (1, 0, 10), (2,), (4, 6), (0, 0), ("prentmaker: Rembrandt Harmensz. van Rijn",), None, ("techniek: etsen",)),
    (5, (1, 1, 10), (2,), (4, 5), (1700, 1650), ("prentmaker: anoniem",), "1700 – 1650", ()),
    (6, (1, 1, 1), (2,), (1,), (-500, -450), (), "-500 – -450", ()),
)
TRAIN_ONLY_TYPE = 1  # "aak", on the very first row
NO_TYPE_ROW = 60  # 1-based: the train image of the "unknown" block has no type at all
NUM_IMAGES = 62
CORRUPT_ROW = 4
MISSING_ROW = 5


def object_number(row: int) -> str:
    return f"SK-A-{1000 + row}"


def stem(row: int) -> str:
    return f"{row:07d}_{object_number(row)}"


RECORD = """<?xml version="1.0" encoding="UTF-8"?>
<record xmlns="http://www.openarchives.org/OAI/2.0/">
  <header>
    <identifier>oai:rijksmuseum.nl:{number}</identifier>
    <datestamp>2013-11-27</datestamp>
  </header>
  <metadata>
    <oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/">
      <dc:identifier>{number}</dc:identifier>
      <dc:identifier>COLLECT.{collect}</dc:identifier>
      <dc:title>Voorwerp {row} &amp; zijn schaduw</dc:title>
{fields}
      <dc:language>Dutch</dc:language>
      <dc:publisher>Rijksmuseum</dc:publisher>
    </oai_dc:dc>
  </metadata>
</record>
"""


def _record(row: int, creators: tuple[str, ...], types: list[str], formats: list[str], date: str | None) -> str:
    fields = [f"<dc:creator>{c}</dc:creator>" for c in creators]
    fields += [f"<dc:type>{t}</dc:type>" for t in types]
    fields += [
        f"<dc:format>http://www.rijksmuseum.nl/media/assets/{object_number(row)}</dc:format>",
        f"<dc:format>http://www.rijksmuseum.nl/collectie/{object_number(row)}</dc:format>",
        "<dc:format>hoogte: 10 cm</dc:format>",
        *(f"<dc:format>{f}</dc:format>" for f in formats),
    ]
    if date is not None:
        fields.append(f"<dc:date>{date}</dc:date>")
    body = "\n".join(" " * 6 + f for f in fields)
    return RECORD.format(number=object_number(row), collect=5000 + row, row=row, fields=body)


def make(root: Path) -> Path:
    """Write the fake release into ``root`` (created if needed); return ``root``."""
    root = Path(root)
    (root / "jpg2").mkdir(parents=True, exist_ok=True)
    (root / "xml2").mkdir(exist_ok=True)
    split, creator, years = [], [], []
    types = np.zeros((NUM_IMAGES, len(TYPE_NAMES)), np.uint8)
    materials = np.zeros((NUM_IMAGES, len(MATERIAL_NAMES)), np.uint8)
    rng = np.random.default_rng(0)
    row = 0
    for block, sizes, type_ids, material_ids, year, creators, date, extra_formats in BLOCKS:
        for set_id, count in enumerate(sizes, start=1):
            for _ in range(count):
                row += 1
                split.append(set_id)
                creator.append(block)
                years.append(year)
                row_types = [] if row == NO_TYPE_ROW else list(type_ids)
                if row == 1:
                    row_types.append(TRAIN_ONLY_TYPE)
                for position, t in enumerate(row_types, start=1):
                    types[row - 1, t - 1] = position  # k > 0 = position in the record's type list
                for position, m in enumerate(material_ids, start=1):
                    materials[row - 1, m - 1] = position
                named = [MATERIAL_NAMES[m - 1] for m in material_ids if MATERIAL_NAMES[m - 1]]
                formats = [f"materiaal: {name.replace(chr(26) * 2, 'é')}" for name in named]
                formats += list(extra_formats)
                xml = _record(row, creators, [TYPE_NAMES[t - 1] for t in row_types], formats, date)
                (root / "xml2" / f"{stem(row)}.xml").write_text(xml, encoding="utf-8")
                image = root / "jpg2" / f"{stem(row)}.jpg"
                if row == CORRUPT_ROW:
                    image.write_bytes(b"this is not a JPEG")
                elif row != MISSING_ROW:
                    pixels = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(image, "JPEG")
    assert row == NUM_IMAGES
    creator_ids = np.array(creator, np.uint16)

    def cell(names: tuple[str, ...]) -> np.ndarray:
        return np.array(names, dtype=object).reshape(-1, 1)

    gt = {
        "Cnames": cell(CREATOR_NAMES),
        "C": creator_ids.reshape(-1, 1),
        "Ccount": np.bincount(creator_ids, minlength=len(CREATOR_NAMES) + 1)[1:].astype(np.uint16).reshape(-1, 1),
        "Cnote": "Last two classes are anoniem and unknown",
        "Y": np.array(years, np.int16),
        "Yinx": np.arange(0, 2025, 25, dtype=np.uint16).reshape(1, -1),
        "Yhist": np.zeros((81, 1), np.uint16),
        "T": types,
        "Tsum": (types > 0).sum(axis=1, dtype=np.uint8).reshape(-1, 1),
        "Thist": np.zeros((10, 1), np.int32),
        "Thist2": np.zeros((2, 18)),
        "Tnames": cell(TYPE_NAMES),
        "Tnote": "Two types have no data id 4 and 6",
        "M": materials,
        "Msum": (materials > 0).sum(axis=1, dtype=np.uint8).reshape(-1, 1),
        "Mhist": np.zeros((20, 1), np.int32),
        "Mhist2": np.zeros((2, 21)),
        "Mnames": cell(MATERIAL_NAMES),
        "N": np.array([[NUM_IMAGES]], np.int32),
        "det": {"rs": np.zeros((0, 0))},
        "set": np.array(split, np.int16).reshape(-1, 1),
    }
    scipy.io.savemat(root / "rijksgt.mat", {"gt": gt})
    return root


if __name__ == "__main__":
    print(make(Path(sys.argv[1])))
