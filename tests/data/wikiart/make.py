"""A fake WikiArt folder in the ArtGAN layout (research notes §5.1) and, with pyarrow, the huggan parquet layout
(§5.2).

ArtGAN files as published: class lists ``<idx> <Name>`` (LF); ``style_*.csv``/``genre_*.csv`` rows ``path,idx``
with CRLF; ``artist_train``/``artist_val`` with the ``(Path to image),, (Groundtruth class)`` header (train with a
trailing space), a blank line and ``path,,idx`` rows with LF. ``line_endings="swapped"`` writes the other line
ends (LF for style/genre, CRLF for artist) to check that the reader does not depend on them. The rows reproduce
the real files' quirks: mojibake paths (one with ``\\x85``, where ``str.splitlines`` would break the line), a
``(1)`` in a name, the ``Art_Nouveau_Modern`` folder of the style ``Art_Nouveau``, an image that is train for
style but val for artist, and the genre_val path listed twice with two genres. Images are tiny JPEGs under
``wikiart/``; one is corrupt and one is missing unless ``bad_images=False``.

The parquet layout: two shards ``data/train-0000k-of-00002.parquet`` with ``image`` (struct of bytes and path),
``artist``/``genre``/``style`` int64 ids and the ``huggingface`` schema metadata naming the classes.

Run ``python -m tests.data.wikiart.make OUT_DIR`` to look at one.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

STYLES = (
    "Abstract_Expressionism", "Action_painting", "Analytical_Cubism", "Art_Nouveau", "Baroque",
    "Color_Field_Painting", "Contemporary_Realism", "Cubism", "Early_Renaissance", "Expressionism", "Fauvism",
    "High_Renaissance", "Impressionism", "Mannerism_Late_Renaissance", "Minimalism", "Naive_Art_Primitivism",
    "New_Realism", "Northern_Renaissance", "Pointillism", "Pop_Art", "Post_Impressionism", "Realism", "Rococo",
    "Romanticism", "Symbolism", "Synthetic_Cubism", "Ukiyo_e",
)  # fmt: skip
GENRES = (
    "abstract_painting", "cityscape", "genre_painting", "illustration", "landscape", "nude_painting", "portrait",
    "religious_painting", "sketch_and_study", "still_life",
)  # fmt: skip
ARTISTS = (
    "Albrecht_Durer", "Boris_Kustodiev", "Camille_Pissarro", "Childe_Hassam", "Claude_Monet", "Edgar_Degas",
    "Eugene_Boudin", "Gustave_Dore", "Ilya_Repin", "Ivan_Aivazovsky", "Ivan_Shishkin", "John_Singer_Sargent",
    "Marc_Chagall", "Martiros_Saryan", "Nicholas_Roerich", "Pablo_Picasso", "Paul_Cezanne", "Pierre_Auguste_Renoir",
    "Pyotr_Konchalovsky", "Raphael_Kirchner", "Rembrandt", "Salvador_Dali", "Vincent_van_Gogh",
)  # fmt: skip
CLASSES = {"style": STYLES, "genre": GENRES, "artist": ARTISTS}
ARTIST_HEADER = "(Path to image),, (Groundtruth class)"
FILES = {  # target -> (folder, class list, train file, val file)
    "style": ("Style", "style_class.txt", "style_train.csv", "style_val.csv"),
    "genre": ("Genre", "genre_class", "genre_train.csv", "genre_val.csv"),
    "artist": ("Artist", "artist_class", "artist_train", "artist_val"),
}
CONFLICT = "Impressionism/pierre-auguste-renoir_maternity-child-with-a-biscuit-1887.jpg"
"""In style_train and in artist_val (one of the 566 such images of the real files)."""
CONTRADICTED = "Post_Impressionism/maurice-de-vlaminck_the-village.jpg"
"""Listed twice in genre_val, as cityscape and as landscape (as in the real file)."""
MOJIBAKE = "Naive_Art_Primitivism/grã©goire-michonze_birds.jpg"
NEL = "Romanticism/peder-balke_ã\x85lesund-1890(1).jpg"
CORRUPT = "Baroque/rembrandt_fake-2.jpg"
MISSING = "Realism/ilya-repin_fake-4.jpg"


def artgan_rows() -> dict[str, dict[str, tuple[str, str]]]:
    """image path -> target -> (ArtGAN split, class name)."""
    rows: dict[str, dict[str, tuple[str, str]]] = {}
    bulk = [("Impressionism", "claude-monet", "landscape"), ("Realism", "ilya-repin", "portrait")]
    bulk.append(("Baroque", "rembrandt", "religious_painting"))
    for k in range(30):
        style, slug, genre = bulk[k % 3]
        split = "val" if k % 4 == 3 else "train"
        artist = {"claude-monet": "Claude_Monet", "ilya-repin": "Ilya_Repin", "rembrandt": "Rembrandt"}[slug]
        image = f"{style}/{slug}_fake-{k}.jpg"
        rows[image] = {"style": (split, style)}
        if k % 5:
            rows[image]["genre"] = (split, genre)
        if k % 6:
            rows[image]["artist"] = (split, artist)
    for k in range(3):
        rows[f"Art_Nouveau_Modern/raphael-kirchner_girl-{k}.jpg"] = {
            "style": ("train", "Art_Nouveau"),
            "genre": ("train", "illustration"),
            "artist": ("train", "Raphael_Kirchner"),
        }
    rows[MOJIBAKE] = {"style": ("train", "Naive_Art_Primitivism"), "genre": ("train", "genre_painting")}
    rows["Impressionism/joaquã\xadn-sorolla_study-of-vineyard.jpg"] = {"style": ("val", "Impressionism")}
    rows[NEL] = {"style": ("train", "Romanticism"), "genre": ("train", "landscape")}
    rows[CONFLICT] = {"style": ("train", "Impressionism"), "artist": ("val", "Pierre_Auguste_Renoir")}
    rows[CONTRADICTED] = {"style": ("val", "Post_Impressionism"), "genre": ("val", "cityscape")}
    return rows


def write_artgan_files(folder: Path, line_endings: str = "artgan") -> None:
    """The nine split files of :func:`artgan_rows` under ``folder`` (``Style/``, ``Genre/``, ``Artist/``)."""
    rows = artgan_rows()
    for target, (sub, class_file, *split_files) in FILES.items():
        (folder / sub).mkdir(parents=True, exist_ok=True)
        names = CLASSES[target]
        (folder / sub / class_file).write_bytes("".join(f"{i} {n}\n" for i, n in enumerate(names)).encode())
        crlf = (target != "artist") == (line_endings == "artgan")
        end = "\r\n" if crlf else "\n"
        for split, file in zip(("train", "val"), split_files, strict=True):
            lines = [
                f"{image},{',' if target == 'artist' else ''}{names.index(labels[target][1])}"
                for image, labels in rows.items()
                if target in labels and labels[target][0] == split
            ]
            if target == "genre" and split == "val":
                lines.append(f"{CONTRADICTED},{GENRES.index('landscape')}")
            if target == "artist":
                lines = [ARTIST_HEADER + (" " if split == "train" else ""), "", *lines]
            (folder / sub / file).write_bytes("".join(line + end for line in lines).encode())


def jpeg(rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def make(root: Path, line_endings: str = "artgan", bad_images: bool = True, seed: int = 0) -> None:
    """Write the ArtGAN layout at ``root``: ``artgan/`` split files and ``wikiart/`` images."""
    rng = np.random.default_rng(seed)
    write_artgan_files(root / "artgan", line_endings)
    for image in artgan_rows():
        path = root / "wikiart" / image
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(rng))
    if bad_images:
        (root / "wikiart" / CORRUPT).write_bytes(b"\xff\xd8 this is not a JPEG any more")
        (root / "wikiart" / MISSING).unlink()


HF_ARTISTS = (
    "Unknown Artist",
    *(name.lower().replace("_", "-") for name in ARTISTS[1:]),
    "hieronymus-bosch",
    "leonardo-da-vinci",
    "albrecht-durer",
    "joaquã\xadn-sorolla",
)
"""Ids 0-25 as in huggan/wikiart (ArtGAN's artist 0 is id 25 there), then one mojibake name (§5.2)."""
HF_GENRES = (*GENRES, "Unknown Genre")
HF_ROWS = (  # shard -> (artist, genre, style) names per row
    (("albrecht-durer", "religious_painting", "Northern_Renaissance"), ("Unknown Artist", "portrait", "Baroque")),
    (
        ("vincent-van-gogh", "Unknown Genre", "Post_Impressionism"),
        ("joaquã\xadn-sorolla", "landscape", "Impressionism"),
        ("hieronymus-bosch", "religious_painting", "Northern_Renaissance"),
    ),
)


def make_parquet(root: Path, seed: int = 0) -> None:
    """Write the huggan/wikiart layout at ``root``: ``data/train-0000k-of-00002.parquet`` (needs pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    features = {
        "image": {"_type": "Image"},
        "artist": {"names": list(HF_ARTISTS), "_type": "ClassLabel"},
        "genre": {"names": list(HF_GENRES), "_type": "ClassLabel"},
        "style": {"names": list(STYLES), "_type": "ClassLabel"},
    }
    metadata = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    (root / "data").mkdir(parents=True, exist_ok=True)
    for shard, rows in enumerate(HF_ROWS):
        images = [jpeg(rng) for _ in rows]
        if shard == 1:  # one PNG among the JPEGs
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(buffer, "PNG")
            images[0] = buffer.getvalue()
        table = pa.table(
            {
                "image": pa.array(
                    [{"bytes": b, "path": None} for b in images],
                    pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
                ),
                "artist": pa.array([HF_ARTISTS.index(a) for a, _, _ in rows], pa.int64()),
                "genre": pa.array([HF_GENRES.index(g) for _, g, _ in rows], pa.int64()),
                "style": pa.array([STYLES.index(s) for _, _, s in rows], pa.int64()),
            }
        ).replace_schema_metadata(metadata)
        pq.write_table(table, root / "data" / f"train-{shard:05d}-of-{len(HF_ROWS):05d}.parquet")


if __name__ == "__main__":
    make(Path(sys.argv[1]) / "artgan-layout")
    make_parquet(Path(sys.argv[1]) / "huggan-layout")
