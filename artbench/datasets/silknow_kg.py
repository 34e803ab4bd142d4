"""SILKNOW knowledge-graph export to sample table: the 2020–21 dataset-creation pipeline (research notes §1.3b, §1.5).

Input: EURECOM's export of the SILKNOW knowledge graph, ``total_post.csv`` (comma-separated in
silknow/image-classification, TAB-separated in the multimodal repository's copy). Its cells hold Python list reprs
such as ``['http://…/a.jpg', 'http://…/b.jpg']``; the columns used are ``obj`` (object URI), ``museum`` (graph URIs,
the first one's last segment names the museum), ``deeplink`` (image URLs), ``category_group`` and one column per
variable (:data:`EXPORT_COLUMNS`). The steps follow ``DatasetCreation.py`` (silknow/image-classification, 2021) with
the defaults of ``silk_classification_func.create_dataset_parameter``:

1. parse the cells: a variable with one value keeps it; several values are a multi-label string (``a___b``, sorted)
   for the variables in ``multilabel`` and *conflicting annotations* (missing) otherwise; technique, material and
   depiction keep the last URI segment (of each value: the original joins the URIs first and so kept only the last
   label of a multi-label cell); a value repeated in one cell counts once;
2. one row per image URL, only for records whose single category is ``fabrics``; the image is named
   ``<museum>__<object id>__<last URL segment>`` (``.jpg`` appended when absent);
3. image URLs used by several rows are dropped (a repeated image name keeps its first row);
4. *minimum samples per class*: a class with fewer than ``min_samples`` images (counted over all museums), or in
   fewer than ``min_records`` records, is rare: missing (2021 code) or, with ``rare = "background"``, the
   background label ``bg <variable>`` (SilkNet §4, which keeps such images but not their class);
5. *museum filter*: rows of the retained museums, plus the images named in the fabric list (``fabricImages.txt``);
6. rows with fewer than ``min_labels`` known foreground labels are dropped;
7. once images were fetched (``<root>/img`` exists), rows whose image file is absent (dead links) are dropped and
   steps 4 and 6 repeated;
8. spaces in labels become ``_``;
9. the records are dealt into five chunks: rows shuffled (``seed``), then each museum's records round-robin, so a
   record's images stay together and museums spread evenly; with ``min_samples > 1`` every chunk must hold every
   label of every variable (missing included), reshuffling up to 10 times;
10. :func:`write_collection_files` writes ``collection_1..5.txt`` and the master files.

Not reproduced: the class-aggregation files (identity by default) and the rescaling of the images to 448 px on the
shorter side (the image cache resizes anyway).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from artbench.core.errors import ArtbenchError
from artbench.core.progress import console
from artbench.datasets._download import fetch

EXPORT_FILE = "total_post.csv"
FABRIC_LIST_FILE = "fabricImages.txt"
EXPORT_COLUMNS = {  # variable -> export column (DatasetCreation.relevant_variables order)
    "timespan": "time_label",
    "place": "place_country_code",
    "material": "material_group",
    "technique": "technique_group",
    "depiction": "depict_group",
}
VARIABLES = tuple(EXPORT_COLUMNS)
URI_VARIABLES = ("material", "technique", "depiction")
"""Variables whose values are vocabulary URIs: the label is the last path segment."""
RETAINED_MUSEUMS = (
    "cer", "garin", "imatex", "joconde", "mad", "met", "mfa", "mobilier",
    "mtmad", "paris-musees", "risd", "smithsonian", "unipa", "vam", "venezia", "versailles",
)  # fmt: skip
MULTI_LABEL_JOIN = "___"
NUM_CHUNKS = 5
SHUFFLE_TRIES = 10
RARE_MODES = ("missing", "background")


@dataclass(frozen=True)
class KGOptions:
    """The pipeline's parameters (defaults: ``create_dataset_parameter``, research notes §1.5)."""

    min_samples: int = 150
    min_records: int = 1
    min_labels: int = 1
    museums: tuple[str, ...] = RETAINED_MUSEUMS
    """Museums kept by step 5; empty keeps every museum."""
    multilabel: tuple[str, ...] = ("material",)
    rare: str = "missing"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rare not in RARE_MODES:
            raise ArtbenchError(f"SILKNOW option rare={self.rare!r} is unknown; valid: {', '.join(RARE_MODES)}")
        unknown = sorted(set(self.multilabel) - set(VARIABLES))
        if unknown:
            raise ArtbenchError(f"SILKNOW option multilabel names {unknown}; variables: {', '.join(VARIABLES)}")
        for name in ("min_samples", "min_records", "min_labels"):
            if getattr(self, name) < 0:
                raise ArtbenchError(f"SILKNOW option {name} must be >= 0, got {getattr(self, name)}")

    @property
    def ensure_every_label_in_every_chunk(self) -> bool:
        return self.min_samples > 1


def background_label(variable: str) -> str:
    return f"bg {variable}"


def read_export(path: Path) -> pd.DataFrame:
    """The KG export as strings (nothing turned into NaN); TAB- or comma-separated, found from the header line."""
    if not path.is_file():
        raise ArtbenchError(f"SILKNOW KG export {str(path)!r} does not exist")
    with open(path, encoding="utf-8") as f:
        header = f.readline()
    try:
        raw = pd.read_csv(path, sep="\t" if "\t" in header else ",", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ArtbenchError(f"cannot parse the SILKNOW KG export {str(path)!r}: {exc}") from None
    needed = ["obj", "museum", "deeplink", "category_group", *EXPORT_COLUMNS.values()]
    absent = [c for c in needed if c not in raw.columns]
    if absent:
        raise ArtbenchError(
            f"{str(path)!r} is not a SILKNOW KG export: it lacks the column(s) {absent} (research notes §1.3b)"
        )
    return raw


def parse_list_cell(cell: str) -> list[str]:
    """Values of a list-repr cell (``['a', 'b']``, ``[]``, a bare value); ``nan`` and empty values are dropped."""
    inner = cell.strip().lstrip("[").rstrip("]")
    values = [part.strip().strip("'\"").strip() for part in inner.split(",")]
    return [v for v in values if v and v != "nan"]


def last_segment(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _variable_value(values: list[str], variable: str, multilabel: Sequence[str]) -> str | float:
    """Step 1 for one cell: one value, a sorted multi-label string, or NaN (no or conflicting annotations)."""
    if variable in URI_VARIABLES:
        values = [last_segment(v) for v in values]
    values = sorted(set(values))
    if len(values) == 1:
        return values[0]
    if len(values) > 1 and variable in multilabel:
        return MULTI_LABEL_JOIN.join(values)
    return np.nan


def image_file_name(museum: str, obj: str, url: str) -> str:
    """``<museum>__<object id>__<last URL segment>``, with ``.jpg`` appended when the name has none (step 2, 10)."""
    name = f"{museum}__{obj}__{url.rsplit('/', 1)[-1]}"
    return name if ".jpg" in name else name + ".jpg"


def export_images(raw: pd.DataFrame, multilabel: Sequence[str]) -> pd.DataFrame:
    """Steps 1-3: one row per image of a fabric record: ``image_file``, ``url``, ``museum``, ``obj``, variables."""
    rows = []
    for record in raw.itertuples(index=False):
        categories = [last_segment(c) for c in parse_list_cell(record.category_group)]
        if categories != ["fabrics"]:
            continue
        museums = parse_list_cell(record.museum)
        if not museums:
            continue
        museum, obj = last_segment(museums[0]), last_segment(record.obj.strip())
        labels = {
            v: _variable_value(parse_list_cell(getattr(record, column)), v, multilabel)
            for v, column in EXPORT_COLUMNS.items()
        }
        for url in parse_list_cell(record.deeplink):
            rows.append({"image_file": image_file_name(museum, obj, url), "url": url, "museum": museum, "obj": obj})
            rows[-1].update(labels)
    frame = pd.DataFrame(rows, columns=["image_file", "url", "museum", "obj", *VARIABLES])
    frame = frame[~frame["url"].duplicated(keep=False)]
    frame = frame[~frame["image_file"].duplicated(keep="first")]
    return frame.reset_index(drop=True)


def mark_rare_classes(frame: pd.DataFrame, options: KGOptions) -> pd.DataFrame:
    """Step 4: classes with fewer than ``min_samples`` images or ``min_records`` records become rare."""
    frame = frame.copy()
    for variable in VARIABLES:
        background = background_label(variable)
        labels = frame[variable].where(frame[variable] != background)
        images = labels.value_counts()
        records = frame.assign(record=frame["museum"] + "__" + frame["obj"]).groupby(labels)["record"].nunique()
        rare = images.index[(images < options.min_samples) | (records.reindex(images.index) < options.min_records)]
        frame.loc[labels.isin(rare), variable] = np.nan if options.rare == "missing" else background
    return frame


def read_fabric_list(path: Path) -> set[str]:
    """Image names judged to show fabrics (``fabricImages.txt``: one ``<museum>__<obj>__<image>`` per line)."""
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def keep_museums(frame: pd.DataFrame, museums: Sequence[str], fabric_list: set[str]) -> pd.DataFrame:
    """Step 5: rows of the retained museums (all when ``museums`` is empty) plus the listed fabric images."""
    if not museums:
        return frame
    return frame[frame["museum"].isin(museums) | frame["image_file"].isin(fabric_list)]


def foreground_label_count(frame: pd.DataFrame) -> pd.Series:
    """Known labels per row that are not background."""
    known = pd.DataFrame({v: frame[v].notna() & (frame[v] != background_label(v)) for v in VARIABLES})
    return known.sum(axis=1)


def keep_labelled(frame: pd.DataFrame, min_labels: int) -> pd.DataFrame:
    """Step 6 (and the SilkNet §4 rule that images with only excluded classes are omitted)."""
    return frame[foreground_label_count(frame) >= min_labels]


def replace_spaces(frame: pd.DataFrame) -> pd.DataFrame:
    """Step 8: ``_`` for spaces in every label except the background labels."""
    frame = frame.copy()
    for variable in VARIABLES:
        column = frame[variable]
        fix = column.notna() & (column != background_label(variable))
        frame.loc[fix, variable] = column[fix].str.replace(" ", "_", regex=False)
    return frame


def _every_label_in_every_chunk(frame: pd.DataFrame, chunks: np.ndarray) -> bool:
    for variable in VARIABLES:
        labels = frame[variable].fillna("nan")
        everywhere = set(labels)
        if any(set(labels[chunks == c]) != everywhere for c in range(NUM_CHUNKS)):
            return False
    return True


def chunk_records(frame: pd.DataFrame, seed: int, ensure_every_label: bool) -> np.ndarray:
    """Step 9: chunk ``1..5`` per row (see the module docstring)."""
    rng = np.random.default_rng(seed)
    records = (frame["museum"] + "__" + frame["obj"]).to_numpy()
    for _ in range(SHUFFLE_TRIES):
        shuffled = frame.iloc[rng.permutation(len(frame))]
        chunk_of: dict[str, int] = {}
        for museum in shuffled["museum"].unique():
            for i, obj in enumerate(shuffled.loc[shuffled["museum"] == museum, "obj"].unique()):
                chunk_of[f"{museum}__{obj}"] = i % NUM_CHUNKS
        chunks = np.array([chunk_of[r] for r in records], dtype=np.int64)
        if not ensure_every_label or _every_label_in_every_chunk(frame, chunks):
            return chunks + 1
    raise ArtbenchError(
        f"no split of the SILKNOW KG export into {NUM_CHUNKS} chunks holds every label of every variable after "
        f"{SHUFFLE_TRIES} shuffles; raise min_samples, or change the seed dataset option"
    )


def clean_export(
    raw: pd.DataFrame, options: KGOptions, fabric_list: set[str], image_dir: Path | None = None
) -> pd.DataFrame:
    """Steps 1-8: the image rows that form the dataset (``image_file``, ``url``, ``museum``, ``obj``, variables)."""
    frame = export_images(raw, options.multilabel)
    frame = mark_rare_classes(frame, options)
    frame = keep_museums(frame, options.museums, fabric_list)
    frame = keep_labelled(frame, options.min_labels)
    if frame.empty:
        raise ArtbenchError("no image of the SILKNOW KG export survives the label cleaning; check the options")
    if image_dir is not None and image_dir.is_dir():
        present = frame["image_file"].isin(set(os.listdir(image_dir)))
        if not present.any():
            raise ArtbenchError(
                f"none of the {len(frame)} images of the SILKNOW KG export is in {str(image_dir)!r}; run "
                f"`artbench datasets download silknow --root {image_dir.parent}` to fetch them"
            )
        frame = keep_labelled(mark_rare_classes(frame[present], options), options.min_labels)
    return replace_spaces(frame).reset_index(drop=True)


def collection_header() -> str:
    """Header of the 2020-21 collection files (``writeCollectionFiles``): the variables, then ``museum``."""
    return "\t".join(f"#{name}" for name in ("image_file", *VARIABLES, "museum")) + "\t"


def write_collection_files(frame: pd.DataFrame, chunks: np.ndarray, folder: Path, image_dir: Path) -> None:
    """Step 10: ``collection_<k>.txt`` per chunk ``k`` of :func:`chunk_records` (image paths relative to
    ``folder``, ``nan`` for missing, a trailing TAB on every line) and the master files ``Masterfile.txt``
    (1-5), ``Masterfile_train.txt`` (1-4) and ``Masterfile_test.txt`` (5)."""
    folder.mkdir(parents=True, exist_ok=True)
    relative = Path(os.path.relpath(image_dir, folder))
    for chunk in range(1, NUM_CHUNKS + 1):
        lines = [collection_header()]
        for row in frame[chunks == chunk].itertuples(index=False):
            fields = [(relative / row.image_file).as_posix()] + [str(getattr(row, v)) for v in VARIABLES]
            lines.append("\t".join([*fields, row.museum]) + "\t")
        (folder / f"collection_{chunk}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    names = [f"collection_{k}.txt\n" for k in range(1, NUM_CHUNKS + 1)]
    (folder / "Masterfile.txt").write_text("".join(names))
    (folder / "Masterfile_train.txt").write_text("".join(names[:-1]))
    (folder / "Masterfile_test.txt").write_text(names[-1])


def kg_table(
    export: Path, image_dir: Path, options: KGOptions, fabric_list: set[str], folds: Sequence[str]
) -> pd.DataFrame:
    """The sample table of the export: ``image``, ``group`` (``<museum>__<object id>``), ``split`` (chunk ``k``
    goes to ``folds[k-1]``) and the five variables."""
    frame = clean_export(read_export(export), options, fabric_list, image_dir)
    chunks = chunk_records(frame, options.seed, options.ensure_every_label_in_every_chunk)
    table = pd.DataFrame(
        {
            "image": [str(image_dir / name) for name in frame["image_file"]],
            "group": frame["museum"] + "__" + frame["obj"],
            "split": [folds[c - 1] for c in chunks],
        }
    )
    for variable in VARIABLES:
        table[variable] = frame[variable].to_numpy()
    return table


def download_kg_images(export: Path, root: Path, fabric_list: set[str]) -> None:
    """Fetch the images of the export's candidate rows (steps 1-3, 5, 6 without the class thresholds, so any option
    set finds its images) from the museums' links into ``root/img``; dead links are listed in
    ``root/missing_images.txt``. Then write the collection files of the default options to ``root/kg_collections``.
    """
    raw = read_export(export)
    candidates = export_images(raw, KGOptions().multilabel)
    candidates = keep_labelled(keep_museums(candidates, RETAINED_MUSEUMS, fabric_list), KGOptions().min_labels)
    image_dir = root / "img"
    image_dir.mkdir(parents=True, exist_ok=True)
    dead = []
    for row in candidates.itertuples(index=False):
        if not (image_dir / row.image_file).is_file():
            try:
                fetch(row.url, image_dir / row.image_file)
            except ArtbenchError:
                dead.append(row.url)
    (root / "missing_images.txt").write_text("".join(f"{url}\n" for url in dead))
    if dead:
        console.print(
            f"[yellow]warning:[/] {len(dead)} of {len(candidates)} SILKNOW image links are dead (listed in "
            f"{root / 'missing_images.txt'}); their rows are dropped"
        )
    options = KGOptions()
    try:
        frame = clean_export(raw, options, fabric_list, image_dir)
        chunks = chunk_records(frame, options.seed, options.ensure_every_label_in_every_chunk)
    except ArtbenchError as exc:
        console.print(f"[yellow]warning:[/] SILKNOW collection files not written: {exc}")
        return
    write_collection_files(frame, chunks, root / "kg_collections", image_dir)
