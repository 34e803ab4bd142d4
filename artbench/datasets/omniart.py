"""OmniArt (Strezoski & Worring, "OmniArt: Multi-task Deep Learning for Artistic Data Analysis", arXiv 1708.00684,
2017), read from the OmniArt v3 metadata dump, the public form of the data (research notes §3).

The dump (``omniart_v3_datadump.csv``; CSV, comma, UTF-8, RFC-4180 quoting) has 22 columns, one row per image;
its images are 300-px JPEGs named by ``omni_id`` (``img_300x/<omni_id>.jpg`` in the distribution scripts, notes
§3.1). An extra unnamed leading index column, as in the public 1,000-row extract, is ignored.

Targets (raw dump values; empty or ``unknown`` in any case = missing label):

* ``artist`` (multiclass): ``artist_full_name``, kept as written (MoMA names come with spaces between letters,
  a quirk of the source that is not "fixed" here);
* ``general_type`` (multiclass, coarse: painting, print, drawing, ...) and ``artwork_type`` (multiclass, fine);
* ``year`` (regression): ``creation_year`` (a float such as ``1888.0``; text that is not a number is missing);
* ``century`` (multiclass): ``floor(year / 100) + 1`` as a string (``"19"`` for 1888), the convention of the
  dump's own ``century`` column;
* ``school`` (multiclass): schools mixed with geocoded place strings, as in the dump.

``collection_origins`` is kept as metadata. Rows repeating an ``omni_id`` (one image) keep their first occurrence.

Protocol (paper §4.1, §4.3.1, Table 4): artworks of an unknown artist are excluded; a task keeps the artists with
more than ``min_artist_samples`` images (100, 300, 700 or 1100 in Table 4) and splits each artist's images
70/20/10 into train/val/test ("the splits were made per class"). Per artist the images, ordered by ``omni_id``, are
shuffled with a generator seeded by ``split_seed`` and the artist's name (so an artist's images land in the same
split under every threshold) and cut at sizes apportioned by largest remainder. The split is written once to
``<root>/splits/omniart-<min_artist_samples>-seed<split_seed>.csv`` (``omni_id,split``) and reused, so that it can
be published and shared; tasks read it as the dataset's ``split`` column (protocol ``official``).
"""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from artbench.core.dataset import SPLITS, Dataset, DatasetInfo, data_home, register_dataset
from artbench.core.errors import ArtbenchError
from artbench.core.prerequisites import MissingPrerequisite

DUMP_COLUMNS = (
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
READ_COLUMNS = (
    "omni_id",
    "artist_full_name",
    "creation_year",
    "artwork_type",
    "general_type",
    "school",
    "collection_origins",
)
UNKNOWN = frozenset({"", "unknown"})
"""Values (stripped, lower-cased) that mean a missing label."""
SPLIT_TENTHS = (7, 2, 1)
"""Train/val/test shares of each artist's images, in tenths (paper §4.1: 70/20/10)."""
TARGETS = {
    "artist": "multiclass",
    "general_type": "multiclass",
    "artwork_type": "multiclass",
    "year": "regression",
    "century": "multiclass",
    "school": "multiclass",
}
DUMP_NAME = "omniart_v3_datadump.csv"
IMAGE_FOLDER = "img_300x"
MANUAL_DOWNLOAD = (
    "OmniArt has no public download: ask the OmniArt authors (Strezoski & Worring, University of Amsterdam) for the "
    f"v3 metadata dump and its 300-px images, then put the dump at <root>/{DUMP_NAME} and the images at "
    f"<root>/{IMAGE_FOLDER}/<omni_id>.jpg, where <root> is $ARTBENCH_DATA/omniart or the task's "
    "dataset_options.root (dataset_options metadata_csv, image_folder and image_extension name other files)"
)


def read_dump(path: Path) -> pd.DataFrame:
    """The columns of the v3 dump that artbench uses, as strings, every row; missing labels as NA."""
    if not path.is_file():
        raise MissingPrerequisite("data", f"the OmniArt dump {str(path)!r} does not exist; {MANUAL_DOWNLOAD}")
    try:
        header = pd.read_csv(path, nrows=0).columns
        absent = [c for c in DUMP_COLUMNS if c not in header]
        if absent:
            raise ArtbenchError(
                f"{str(path)!r} is not the OmniArt v3 dump: it lacks the column(s) {absent} "
                f"(its columns: {', '.join(header)})"
            )
        raw = pd.read_csv(path, usecols=list(READ_COLUMNS), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ArtbenchError(f"cannot parse the OmniArt dump {str(path)!r}: {exc}") from None
    return raw.mask(raw.apply(lambda column: column.str.strip().str.lower().isin(UNKNOWN)))


def omniart_targets(raw: pd.DataFrame) -> pd.DataFrame:
    """Target and metadata columns of the dump rows (see the module docstring), indexed like ``raw``."""
    year = pd.to_numeric(raw["creation_year"], errors="coerce")
    century = (np.floor(year / 100) + 1).astype("Int64").astype(str).mask(year.isna())
    return pd.DataFrame(
        {
            "omni_id": raw["omni_id"],
            "artist": raw["artist_full_name"],
            "general_type": raw["general_type"],
            "artwork_type": raw["artwork_type"],
            "year": year.astype(float),
            "century": century,
            "school": raw["school"],
            "collection_origins": raw["collection_origins"],
        }
    )


def apportion(n: int, tenths: tuple[int, ...] = SPLIT_TENTHS) -> list[int]:
    """Split ``n`` items into parts of ``tenths/10`` by largest remainder (ties to the earlier part)."""
    floors = [n * t // 10 for t in tenths]
    remainders = [n * t % 10 for t in tenths]
    for part in sorted(range(len(tenths)), key=lambda i: -remainders[i])[: n - sum(floors)]:
        floors[part] += 1
    return floors


def artist_split(omni_ids: pd.Series, artists: pd.Series, seed: int) -> pd.Series:
    """70/20/10 split of every artist's images (paper §4.1), independent of row order; indexed like the inputs."""
    split = pd.Series("", index=omni_ids.index, dtype=object)
    for artist, index in sorted(artists.groupby(artists, sort=False).groups.items()):
        ids = omni_ids[index].sort_values(kind="stable")
        order = np.random.default_rng([seed, zlib.crc32(str(artist).encode("utf-8"))]).permutation(len(ids))
        split[ids.index[order]] = np.repeat(SPLITS, apportion(len(ids)))
    return split


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            frame.to_csv(out, index=False, lineterminator="\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def split_file(root: Path, min_artist_samples: int, seed: int) -> Path:
    return root / "splits" / f"omniart-{min_artist_samples}-seed{seed}.csv"


def load_or_write_split(path: Path, omni_ids: pd.Series, artists: pd.Series, seed: int) -> pd.Series:
    """The split of ``omni_ids`` from ``path``, written there first if absent; indexed like ``omni_ids``."""
    if not path.is_file():
        split = artist_split(omni_ids, artists, seed)
        try:
            _write_atomically(pd.DataFrame({"omni_id": omni_ids, "split": split}), path)
        except OSError as exc:
            raise ArtbenchError(
                f"cannot write the OmniArt split file {str(path)!r} ({exc}); make it writable"
            ) from None
        return split
    stored = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(stored.columns) != ["omni_id", "split"] or not stored["split"].isin(SPLITS).all():
        raise ArtbenchError(f"{str(path)!r} is not an OmniArt split file (columns omni_id,split; train/val/test)")
    if stored["omni_id"].duplicated().any() or set(stored["omni_id"]) != set(omni_ids):
        raise ArtbenchError(
            f"the split file {str(path)!r} lists other images than the dump selects for this threshold; "
            "it was made from other data: restore the matching dump, or delete the file to write a new split"
        )
    return omni_ids.map(stored.set_index("omni_id")["split"])


def omniart_table(
    root: Path,
    *,
    min_artist_samples: int = 100,
    split_seed: int = 0,
    metadata_csv: str = DUMP_NAME,
    image_folder: str = IMAGE_FOLDER,
    image_extension: str = ".jpg",
) -> pd.DataFrame:
    """The sample table of the artists with more than ``min_artist_samples`` images, with its derived split."""
    if isinstance(min_artist_samples, bool) or not isinstance(min_artist_samples, int) or min_artist_samples < 0:
        raise ArtbenchError(f"min_artist_samples must be an integer >= 0, got {min_artist_samples!r}")
    dump = root / metadata_csv
    rows = omniart_targets(read_dump(dump))
    rows = rows[rows["omni_id"].notna() & ~rows["omni_id"].duplicated()]
    counts = rows["artist"].value_counts()
    rows = rows[rows["artist"].isin(counts.index[counts > min_artist_samples])].reset_index(drop=True)
    if rows.empty:
        raise ArtbenchError(
            f"no artist has more than {min_artist_samples} images in {str(dump)!r} (the most: "
            f"{int(counts.max()) if len(counts) else 0}); lower dataset_options.min_artist_samples"
        )
    split = load_or_write_split(
        split_file(root, min_artist_samples, split_seed), rows["omni_id"], rows["artist"], split_seed
    )
    images = root / image_folder
    table = pd.DataFrame(
        {
            "image": [str(images / f"{omni_id}{image_extension}") for omni_id in rows["omni_id"]],
            "group": rows["omni_id"],
            "split": split,
        }
    )
    return pd.concat([table, rows.drop(columns="omni_id")], axis=1)


def default_root() -> Path:
    return data_home() / "omniart"


INFO = DatasetInfo(
    "omniart",
    description="OmniArt v3 metadata dump (Strezoski & Worring 2017): artist, coarse and fine type, year, century, "
    "school; 70/20/10 split per artist over the artists with more than N images",
    license="unknown (not stated; the source collections' terms apply)",
    citation="Strezoski, G., Worring, M. (2017). OmniArt: Multi-task Deep Learning for Artistic Data Analysis. "
    "arXiv:1708.00684",
    homepage="https://arxiv.org/abs/1708.00684",
    targets=dict(TARGETS),
    splits="derived",
    manual_download=MANUAL_DOWNLOAD,
)


@register_dataset(INFO, default_root=default_root)
def omniart_dataset(
    root: str | None = None,
    min_artist_samples: int = 100,
    split_seed: int = 0,
    metadata_csv: str = DUMP_NAME,
    image_folder: str = IMAGE_FOLDER,
    image_extension: str = ".jpg",
) -> Dataset:
    """OmniArt v3 restricted to the artists with more than ``min_artist_samples`` images, split 70/20/10 per artist."""
    base = Path(root) if root else default_root()
    table = omniart_table(
        base,
        min_artist_samples=min_artist_samples,
        split_seed=split_seed,
        metadata_csv=metadata_csv,
        image_folder=image_folder,
        image_extension=image_extension,
    )
    return Dataset("omniart", table, missing_images_hint=MANUAL_DOWNLOAD, layout="v3 dump")
