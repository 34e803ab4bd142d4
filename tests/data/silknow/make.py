"""Fake SILKNOW copies in two real layouts (research notes §1.3), with tiny smooth JPEGs.

``make_2019(root)``: the 2019 IMATEX release: ``Masterfile.txt`` (final newline) naming ``collection_1..5.txt``
(header ``#image_file #depiction #material #place #technique #timespan``, a trailing TAB on every line, ``NaN``
missing, paths ``./img/imatex__<uuid>.jpg``), four records of one image per fold; fold 1 starts with the first
three rows of the real ``collection_1.txt`` verbatim. ``img/`` holds a JPEG per record except :data:`MISSING_2019`;
:data:`CORRUPT_2019` is not a JPEG; :data:`EXACT_2019` are byte-identical files of two records in folds 1 and 5,
:data:`NEAR_2019` the same picture re-encoded smaller in folds 2 and 4.

``make_kg(root, server)``: a knowledge-graph export ``total_post.csv`` (comma-separated, list-repr cells, an ``ID``
index column) plus ``fabricImages.txt`` in ``root``, and the museums' images in ``server`` (``deeplink`` cells are
``file://`` URLs into it). No real export is public, so the records are synthesised after the format of §1.3b and
each special record (:data:`KG_RECORDS`, keys in capitals) exercises one cleaning rule of §1.5.

Run ``python -m tests.data.silknow.make DIR`` to write both into DIR/2019 and DIR/kg (images in DIR/server).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.ndimage
from PIL import Image

HEADER_2019 = "#image_file\t#depiction\t#material\t#place\t#technique\t#timespan\t"
REAL_ROWS_2019 = (  # collection_1.txt @ silknow/image-classification 2246fab, lines 2-4
    "./img/imatex__0011654a-8ae5-30fa-bf48-ada9e2996e8c.jpg\tFloral_Patterns\tSilk\tES\tPatterned_Fabric\t19th_c.\t",
    "./img/imatex__00236bdd-8916-3f5c-ab7a-d0a37cfac486.jpg\tFloral_Patterns\tSilk\tNaN\tBrocading\t18th_c.\t",
    "./img/imatex__002986c6-3b24-30c8-a5f6-aa294ffbf7c1.jpg\tNaN\tMetal_Thread\tNaN\tBrocading\t18th_c.\t",
)
LABELS_2019 = (  # depiction, material, place, technique, timespan of the synthesised records
    ("Birds", "Silk", "IT", "Damask", "16th_c."),
    ("NaN", "Metal_Thread", "IR", "Embroidering", "17th_c."),
    ("Bouquets", "Silk", "Asia", "Brocatelle", "20th_c."),
    ("Plant_Motifs", "NaN", "ES", "NaN", "NaN"),
    ("Bands_Arrangement", "Silk", "NaN", "Patterned_Fabric", "18th_c."),
)
RECORDS_PER_FOLD = 4


def record_name_2019(fold: int, index: int) -> str:
    """``imatex__<uuid>.jpg`` of record ``index`` (0-3) of fold ``fold`` (1-5)."""
    if fold == 1 and index < len(REAL_ROWS_2019):
        return REAL_ROWS_2019[index].split("\t")[0].removeprefix("./img/")
    return f"imatex__{uuid.UUID(int=fold * 100 + index)}.jpg"


MISSING_2019 = record_name_2019(3, 1)
CORRUPT_2019 = record_name_2019(3, 2)
EXACT_2019 = (record_name_2019(1, 0), record_name_2019(5, 3))
NEAR_2019 = (record_name_2019(2, 0), record_name_2019(4, 0))


def smooth_image(rng: np.random.Generator, size: int = 48) -> Image.Image:
    """Colour noise blurred (sigma 3 px) and stretched to 0-255: texture like a photo's, so its perceptual hash is
    stable under re-encoding (flat or piecewise-linear pictures put many DCT coefficients next to the median)."""
    noise = scipy.ndimage.gaussian_filter(rng.normal(size=(size, size, 3)), (3, 3, 0))
    pixels = (noise - noise.min()) / (noise.max() - noise.min()) * 255
    return Image.fromarray(pixels.astype(np.uint8))


def make_2019(root: Path) -> Path:
    """Write the fake 2019 release into ``root``; return ``root``."""
    root = Path(root)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2019)
    pictures: dict[str, Image.Image] = {}
    for fold in range(1, 6):
        lines = [HEADER_2019]
        for index in range(RECORDS_PER_FOLD):
            name = record_name_2019(fold, index)
            if fold == 1 and index < len(REAL_ROWS_2019):
                lines.append(REAL_ROWS_2019[index])
            else:
                labels = LABELS_2019[(fold + index) % len(LABELS_2019)]
                lines.append("\t".join([f"./img/{name}", *labels]) + "\t")
            image = root / "img" / name
            if name == MISSING_2019:
                continue
            if name == CORRUPT_2019:
                image.write_bytes(b"\xff\xd8 truncated, not a JPEG")
            elif name == EXACT_2019[1]:
                image.write_bytes((root / "img" / EXACT_2019[0]).read_bytes())
            elif name == NEAR_2019[1]:
                pictures[NEAR_2019[0]].resize((40, 40), Image.BILINEAR).save(image, "JPEG", quality=60)
            else:
                pictures[name] = smooth_image(rng)
                pictures[name].save(image, "JPEG", quality=90)
        (root / f"collection_{fold}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "Masterfile.txt").write_text("".join(f"collection_{k}.txt\n" for k in range(1, 6)))
    return root


VOCABULARY = "http://data.silknow.org/vocabulary/"
GRAPH = "http://data.silknow.org/graph/"
OBJECT = "http://data.silknow.org/object/"
FABRICS = [VOCABULARY + "facet/fabrics"]
EIGHTEENTH = "eighteenth century (dates CE)"
NINETEENTH = "nineteenth century (dates CE)"


def _regular(museum: str, k: int) -> dict:
    """A well-labelled fabric record with two images (labels cycle so that every class has many images)."""
    return {
        "museum": museum,
        "images": [f"{museum.upper()}{k:04d}_ANV.jpg", f"{museum.upper()}{k:04d}_REV.jpg"],
        "category": FABRICS,
        "place": [("FR", "ES")[k % 2]],
        "time": [(EIGHTEENTH, NINETEENTH)[k % 2]],
        "technique": [VOCABULARY + ("damask", "velvet")[k % 2]],
        "material": [VOCABULARY + ("animal_fibre", "vegetal_fibre")[k % 2]],
        "depiction": [VOCABULARY + "floral_pattern"] if k % 3 == 0 else [],
    }


def _special(museum: str, images: list[str], **labels: list[str]) -> dict:
    record = {"museum": museum, "images": images, "category": FABRICS}
    for variable in ("place", "time", "technique", "material", "depiction"):
        record[variable] = labels.get(variable, [])
    if "category" in labels:
        record["category"] = labels["category"]
    return record


KG_RECORDS: dict[str, dict] = {
    **{f"regular_{m}_{k}": _regular(m, k) for m in ("imatex", "garin", "mfa") for k in range(6)},
    # Step 1: two places are a conflict (place is single-label): place becomes missing, the rest stays.
    "CONFLICT": _special("imatex", ["c_0.jpg"], place=["FR", "ES"], time=[EIGHTEENTH]),
    # Step 1: two materials of a multi-label variable: the sorted labels joined by '___'.
    "MULTI_MATERIAL": _special(
        "mfa", ["mm_0.jpg", "mm_1.jpg"], material=[VOCABULARY + "metal_thread", VOCABULARY + "animal_fibre"]
    ),
    # Step 2: records that are not (only) fabrics are skipped.
    "NOT_FABRIC": _special("mfa", ["nf_0.jpg"], place=["FR"], category=[VOCABULARY + "facet/costumes"]),
    "TWO_CATEGORIES": _special("mfa", ["tc_0.jpg"], place=["FR"], category=[*FABRICS, VOCABULARY + "facet/costumes"]),
    # Step 3: one URL under two records: both rows go (each record keeps its other image).
    "SHARED_A": _special("garin", ["sa_0.jpg", "shared.jpg"], place=["FR"]),
    "SHARED_B": _special("garin", ["sb_0.jpg", "shared.jpg"], place=["ES"]),
    # Step 4: JP has one image (rare for min_samples=2); bird has two images but one record (rare for min_records=3).
    "RARE_PLACE": _special("imatex", ["rp_0.jpg"], place=["JP"], time=[NINETEENTH]),
    "RARE_RECORDS": _special("imatex", ["rr_0.jpg", "rr_1.jpg"], depiction=[VOCABULARY + "bird"], place=["ES"]),
    # Step 4 then 6: the only label is rare, so the image has no foreground label left and is dropped.
    "ONLY_RARE": _special("garin", ["or_0.jpg"], technique=[VOCABULARY + "twill"]),
    # Step 5: a museum outside the retained list: kept only when its image is in fabricImages.txt.
    "LISTED_MUSEUM": _special("louvre", ["lm_0.jpg"], place=["FR"]),
    "UNLISTED_MUSEUM": _special("louvre", ["um_0.jpg"], place=["FR"]),
    # Step 6: no label at all.
    "UNLABELLED": _special("mfa", ["ul_0.jpg"]),
    # Step 7: the second image's link is dead.
    "DEAD_LINK": _special("imatex", ["dl_0.jpg", "dl_dead.jpg"], place=["FR"]),
    # Step 2 naming: a URL without '.jpg' gets it appended.
    "NO_JPG": _special("mfa", ["nj_0"], place=["ES"]),
    # The same museum picture under two records (the leakage audit's same-name finding).
    "SAME_NAME_A": _special("garin", ["T000444_ANV.jpg"], place=["FR"], time=[EIGHTEENTH]),
    "SAME_NAME_B": _special("garin", ["T000444_ANV.jpg"], place=["FR"], time=[EIGHTEENTH]),
}
DEAD_IMAGE = "dl_dead.jpg"


def kg_object_id(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def kg_image_path(server: Path, key: str, image: str) -> Path:
    """Where the 'museum' serves image ``image`` of record ``key``: a folder per record, except the shared URL."""
    return (server if image == "shared.jpg" else server / kg_object_id(key)) / image


def kg_image_name(key: str, image: str) -> str:
    record = KG_RECORDS[key]
    name = f"{record['museum']}__{kg_object_id(key)}__{image}"
    return name if ".jpg" in name else name + ".jpg"


def _cell(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def make_kg(root: Path, server: Path) -> Path:
    """Write the fake export and fabric list into ``root`` and the images into ``server``; return ``root``."""
    root, server = Path(root), Path(server)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2021)
    rows = []
    for i, (key, record) in enumerate(KG_RECORDS.items()):
        paths = [kg_image_path(server, key, image) for image in record["images"]]
        for path in paths:
            if path.name != DEAD_IMAGE and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                smooth_image(rng, 24).save(path, "JPEG", quality=90)
        rows.append(
            {
                "ID": i,
                "obj": OBJECT + kg_object_id(key),
                "museum": _cell([GRAPH + record["museum"]]),
                "deeplink": _cell([path.as_uri() for path in paths]),
                "img": _cell([f"http://data.silknow.org/image/{kg_object_id(key)}/{i}" for i in record["images"]]),
                "place_country_code": _cell(record["place"]),
                "time_label": _cell(record["time"]),
                "technique_group": _cell(record["technique"]),
                "material_group": _cell(record["material"]),
                "depict_group": _cell(record["depiction"]),
                "category_group": _cell(record["category"]),
            }
        )
    pd.DataFrame(rows).to_csv(root / "total_post.csv", index=False)
    listed = [kg_image_name("LISTED_MUSEUM", "lm_0.jpg"), kg_image_name("regular_mfa_0", "MFA0000_ANV.jpg")]
    (root / "fabricImages.txt").write_text("".join(f"{name}\n" for name in listed))
    return root


if __name__ == "__main__":
    base = Path(sys.argv[1])
    print(make_2019(base / "2019"), make_kg(base / "kg", base / "server"))
