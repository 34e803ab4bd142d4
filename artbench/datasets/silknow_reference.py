"""Statistics of the SILKNOW dataset as printed in the SilkNet paper.

Source: Dorozynski (2023), "Addressing class imbalance for training a multi-task classifier in the context of
silk heritage" (SilkNet), ISPRS Annals X-1/W1-2023, section 4 ("Dataset"), Table 1 (samples per class) and
Table 2 (class-distribution statistics).
Dataset DOI: https://doi.org/10.5281/zenodo.5743090.

The constants are copied from the paper, not derived from the data; ``tests/datasets/test_silknow_synth.py``
checks that they are consistent with each other (Table 1 counts reproduce the §4 percentages and Table 2). They
parameterise the synthetic ``silknow-synth`` generator (:mod:`artbench.datasets.silknow_synth.labels`), whose
48,912-image task ``silknow-synth-full`` has exactly these counts.
"""

from __future__ import annotations

NUM_IMAGES: int = 48_912
"""Images in the SILKNOW dataset after restricting to plain silk textiles with >= 1 known label (§4)."""

NUM_RECORDS_KNOWLEDGE_GRAPH: int = 38_873
"""Silk records in the SILKNOW knowledge graph before that restriction (§4); each has >= 1 images."""

TARGETS: tuple[str, ...] = ("place", "material", "time", "technique", "depiction")
"""The M = 5 semantic variables (§4), in the order used by artbench."""

CLASS_COUNTS: dict[str, dict[str, int]] = {
    "place": {
        "GB": 7_998,
        "FR": 7_379,
        "ES": 4_708,
        "IT": 4_700,
        "IN": 2_353,
        "CN": 1_399,
        "IR": 1_294,
        "JP": 1_097,
        "BE": 648,
        "TR": 593,
        "DE": 592,
        "GR": 479,
        "NL": 455,
        "US": 357,
        "PK": 352,
        "RU": 228,
        "JM": 191,
        "CH": 146,
        "EG": 117,
        "AZ": 115,
        "MO": 84,
        "AT": 81,
        "PT": 73,
        "MA": 63,
        "BD": 60,
        "CA": 52,
        "AU": 46,
        "MM": 46,
        "UZ": 42,
    },
    "material": {
        "animal fibre": 27_252,
        "metal thread": 4_208,
        "vegetal fibre": 3_891,
    },
    "time": {
        "19th c.": 9_975,
        "18th c.": 8_423,
        "20th c.": 4_012,
        "17th c.": 3_378,
        "16th c.": 1_829,
        "15th c.": 685,
        "13th c.": 43,
    },
    "technique": {
        "embroidery": 6_861,
        "velvet": 3_051,
        "damask": 2_768,
        "other techn.": 2_526,
        "resist dyeing": 355,
        "tabby": 185,
        "printed": 99,
        "twill": 67,
        "cannele": 65,
    },
    "depiction": {
        "flower": 2_352,
        "plant": 336,
        "geom. shape": 202,
        "stripe": 138,
        "text": 129,
        "animal": 116,
        "fruit": 95,
        "object": 73,
    },
}
"""Table 1: images per foreground class ("NS"), class names as printed, ordered by count (descending).

``19^{th} c.`` is written ``"19th c."``; abbreviations (``"other techn."``, ``"geom. shape"``, ISO country
codes for *place*) are kept as printed.
"""

BACKGROUND_COUNTS: dict[str, int] = {
    "place": 604,
    "material": 0,
    "time": 104,
    "technique": 44,
    "depiction": 56,
}
"""Table 1, ``bg ...`` rows: images whose label is known but belongs to an excluded (too rare) class (§4)."""

BACKGROUND_LABELS: dict[str, str] = {
    "place": "bg place",
    "material": "bg material",
    "time": "bg time",
    "technique": "bg technique",
    "depiction": "bg depiction",
}
"""Label value used for the background class of each target (Table 1 prints ``bg techn.`` for technique)."""

LABELLED_PERCENT: dict[str, float] = {
    "place": 73.1,
    "material": 72.3,
    "time": 58.0,
    "technique": 32.7,
    "depiction": 7.0,
}
"""§4 text: percentage of the 48,912 images with a known foreground (class-of-interest) label per target."""

PERCENT_WITH_SOME_UNKNOWN: float = 99.8
"""§4 text: percentage of images whose label is unknown for at least one of the five targets."""

TABLE2: dict[str, tuple[int, int, float]] = {
    "place": (29, 22, 190.4),
    "time": (7, 5, 232.0),
    "technique": (9, 5, 105.6),
    "material": (3, 2, 7.0),
    "depiction": (8, 7, 32.2),
}
"""Table 2 per target: (K_m classes, |M_m| underrepresented classes, IR imbalance ratio).

|M_m| counts classes with relative frequency < 1/K_m among the foreground labels; IR (eq. 9) is the ratio of
the relative frequencies of the most and the least frequent foreground class.
"""

SPLIT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
"""§4: train / validation / test fractions; all images of one record go to the same subset."""
