"""Labels of ``silknow-synth``: exact Table 1 class counts at any size, records of 1-3 images, §4 availability.

Sources: Dorozynski (2023) §4 and Tables 1-2 (constants in :mod:`artbench.datasets.silknow_reference`).

Counts (:func:`class_counts`). Per target, the images with a known label (foreground class or background) and
those without one are the largest-remainder rounding of Table 1 at the requested size; the known ones are shared
between the foreground classes and the background label, again by largest remainder. Every label then gets at
least :data:`MIN_RECORDS_PER_CLASS` images (one record each for train, validation and test of the 60/20/20
record-grouped split of §4), taken one at a time from the most frequent class; when a target's known images cannot
give every label that many, its rarest labels (by Table 1 count) are left out. At 48,912 images the counts are
Table 1 exactly; from 2,996 images up the minimum never binds; below that the rare classes are inflated (at 400
images, the size of the tests' tiny task, place has IR 16.0 instead of 190.4, and every depiction class but
*flower* has 3 images, flower 5: IR 1.7 instead of 32.2) and, at the smallest sizes, left out (at 10 images only
GB and FR remain of the places). Fewer than 4 images cannot give every record a known foreground label.

Records (:func:`sample_records`). Records of 1-3 images share all labels. Each target's labels are dealt to the
records so that every label gets exactly its image count and at least three records (:func:`_deal`); then records
without a known foreground label (the real dataset keeps none, §4) swap a label with a record of the same size
that has two; then, for a fraction of records, *time* and *technique* labels are permuted among records of the
same size so that they follow the *place* quantile (a comonotone copula): swaps and permutations among records of
equal size leave every count exact. Unknown labels still get a latent class (drawn from Table 1 frequencies)
because every fabric has a place and a time even when the catalogue does not say; the renderer draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from artbench.datasets.silknow_reference import (
    BACKGROUND_COUNTS,
    BACKGROUND_LABELS,
    CLASS_COUNTS,
    NUM_IMAGES,
    TARGETS,
)

MAX_IMAGES_PER_RECORD = 3
MIN_RECORDS_PER_CLASS = 3
"""Records (hence images) every present label gets: one per split of the 60/20/20 grouped protocol (§4)."""
UNKNOWN = ""
"""Label value (empty CSV cell) of an image whose label is unknown."""
TIME_COUPLING = 0.35
"""Fraction of records whose *time* label follows the quantile of their *place* class."""
TECHNIQUE_COUPLING = 0.25
"""Fraction of records whose *technique* label follows the quantile of their *place* class."""


class _Infeasible(Exception):
    """The records at hand cannot carry the requested counts; the caller splits records and tries again."""


def latent_class_names(target: str) -> tuple[str, ...]:
    """Latent classes of a target: Table 1 foreground classes (count order), then the background label."""
    return (*CLASS_COUNTS[target], BACKGROUND_LABELS[target])


def latent_class_probabilities(target: str) -> np.ndarray:
    """Table 1 frequencies of the latent classes (foreground counts plus the background count, normalised)."""
    counts = np.array([*CLASS_COUNTS[target].values(), BACKGROUND_COUNTS[target]], dtype=np.float64)
    return counts / counts.sum()


def largest_remainder(weights: Sequence[int], total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` that sum to ``total`` (Hamilton's method).

    Exact integer arithmetic: shares equal the weights when ``total`` equals their sum. Ties in the remainders go
    to the larger weight, then to the earlier one.
    """
    w = np.asarray(weights, dtype=np.int64)
    scaled = w * total
    shares = scaled // w.sum()
    remainders = scaled % w.sum()
    order = np.lexsort((np.arange(len(w)), -w, -remainders))
    shares[order[: total - int(shares.sum())]] += 1
    return shares


def _with_minimum(weights: Sequence[int], total: int, minimum: int) -> np.ndarray:
    """Largest-remainder shares of ``total`` with every share at least ``minimum``; the smallest weights get 0
    when ``total`` cannot give each that many (all of them, and the shares sum to 0, when ``total < minimum``).
    ``weights`` are in descending order (Table 1)."""
    kept = min(len(weights), total // minimum)
    shares = np.zeros(len(weights), dtype=np.int64)
    if kept == 0:
        return shares
    shares[:kept] = largest_remainder(weights[:kept], total)
    for k in np.flatnonzero(shares[:kept] < minimum):
        for _ in range(minimum - int(shares[k])):
            shares[int(np.argmax(shares))] -= 1
            shares[k] += 1
    return shares


def class_counts(num_images: int) -> dict[str, dict[str, int]]:
    """Images per label value of every target at ``num_images``: foreground classes in Table 1 order, the
    background label, then :data:`UNKNOWN`; each target's counts sum to ``num_images`` (module docstring)."""
    counts: dict[str, dict[str, int]] = {}
    for target in TARGETS:
        labels = latent_class_names(target)
        weights = [*CLASS_COUNTS[target].values(), BACKGROUND_COUNTS[target]]
        known_weight = sum(weights)
        known, unknown = largest_remainder([known_weight, NUM_IMAGES - known_weight], num_images)
        order = np.argsort(-np.asarray(weights), kind="stable")  # the background label sits at its count
        shares = np.zeros(len(weights), dtype=np.int64)
        present = [i for i in order if weights[i] > 0]
        shares[present] = _with_minimum([weights[i] for i in present], int(known), MIN_RECORDS_PER_CLASS)
        unknown += known - shares.sum()  # too few known images for even one label: they become unknown
        counts[target] = {label: int(n) for label, n in zip(labels, shares, strict=True)} | {UNKNOWN: int(unknown)}
    return counts


@dataclass(frozen=True)
class Records:
    """The label structure of a generated dataset: records, their sizes, latent and shown labels."""

    sizes: np.ndarray
    """``[R]`` images per record; a record's images are consecutive."""
    latent: np.ndarray
    """``[R, M]`` latent class index per target (``K_t`` = background); drives the rendering."""
    known: np.ndarray
    """``[R, M]`` whether the label is shown in the CSV."""

    @property
    def image_record(self) -> np.ndarray:
        """``[N]`` record index of each image."""
        return np.repeat(np.arange(len(self.sizes)), self.sizes)

    def labels(self) -> dict[str, np.ndarray]:
        """``[R]`` label string (:data:`UNKNOWN` if not shown) per record and target."""
        out = {}
        for j, target in enumerate(TARGETS):
            names = np.array(latent_class_names(target), dtype=object)
            out[target] = np.where(self.known[:, j], names[self.latent[:, j]], UNKNOWN)
        return out


def _deal(sizes: list[int], demands: np.ndarray, minimum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Category of each record such that category c gets exactly ``demands[c]`` images in at least ``minimum[c]``
    records.

    Categories are served from the smallest demand up, each with the next records of a random order that still
    let it finish exactly with its minimum of records (a record too large waits for the next category); the
    largest category takes the rest. Raises :class:`_Infeasible` when the records run out.
    """
    assignment = np.full(len(sizes), -1, dtype=np.int64)
    served = sorted(np.flatnonzero(demands > 0).tolist(), key=lambda c: (demands[c], c))
    pending: list[int] = rng.permutation(len(sizes)).tolist()
    for c in served[:-1]:
        remaining, missing_records, skipped, pos = int(demands[c]), int(minimum[c]), [], 0
        while remaining > 0:
            if pos == len(pending):
                raise _Infeasible
            r = pending[pos]
            pos += 1
            if sizes[r] <= remaining - max(0, missing_records - 1):
                assignment[r] = c
                remaining -= sizes[r]
                missing_records -= 1
            else:
                skipped.append(r)
        pending = skipped + pending[pos:]
    if len(pending) < minimum[served[-1]]:
        raise _Infeasible
    assignment[pending] = served[-1]
    return assignment


def _give_foreground_labels(category: np.ndarray, foreground: np.ndarray, sizes: np.ndarray, rng) -> None:
    """Swap labels (in place) so that every record has a known foreground label: a record without one takes
    the label of a target from a record of the same size that has two or more; counts stay exact."""
    num_fg = foreground.sum(axis=1)
    for r in rng.permutation(np.flatnonzero(num_fg == 0)):
        donors = (sizes == sizes[r]) & (num_fg >= 2)
        for j in rng.permutation(foreground.shape[1]):
            candidates = np.flatnonzero(donors & foreground[:, j])
            if len(candidates):
                d = int(rng.choice(candidates))
                category[[r, d], j] = category[[d, r], j]
                foreground[[r, d], j] = foreground[[d, r], j]
                num_fg[r] += 1
                num_fg[d] -= 1
                break
        else:
            raise _Infeasible


def _couple_to_place(category: np.ndarray, foreground: np.ndarray, sizes: np.ndarray, quantile: np.ndarray, rng):
    """Permute (in place) *time* and *technique* labels among coupled records of equal size so that frequent
    labels go with frequent places: a comonotone copula that leaves every count exact."""
    for target, share in (("time", TIME_COUPLING), ("technique", TECHNIQUE_COUPLING)):
        j = TARGETS.index(target)
        coupled = (rng.random(len(sizes)) < share) & foreground[:, j]
        for size in range(1, MAX_IMAGES_PER_RECORD + 1):
            members = np.flatnonzero(coupled & (sizes == size))
            category[members[np.argsort(quantile[members], kind="stable")], j] = np.sort(category[members, j])


def _split_some_records(sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sizes with a tenth (at least one) of the multi-image records split into single-image records."""
    multi = np.flatnonzero(sizes > 1)
    split = set(rng.choice(multi, max(1, len(multi) // 10), replace=False).tolist())
    return np.concatenate([np.ones(s, dtype=np.int64) if i in split else [s] for i, s in enumerate(sizes)])


def sample_records(num_images: int, rng: np.random.Generator) -> Records:
    """Records with exactly :func:`class_counts` images per label (module docstring)."""
    counts = class_counts(num_images)
    drawn = rng.integers(1, MAX_IMAGES_PER_RECORD + 1, size=num_images)
    sizes = drawn[: int(np.searchsorted(np.cumsum(drawn), num_images)) + 1].copy()
    sizes[-1] -= int(sizes.sum()) - num_images
    while True:
        try:
            return _labelled_records(sizes, counts, rng)
        except _Infeasible:
            if (sizes == 1).all():
                raise ValueError(
                    f"{num_images} images are too few for records with a known foreground label; ask for more"
                ) from None
            sizes = _split_some_records(sizes, rng)


def _labelled_records(sizes: np.ndarray, counts: dict[str, dict[str, int]], rng: np.random.Generator) -> Records:
    """Deal ``counts`` to records of ``sizes`` (module docstring); raises :class:`_Infeasible` when they cannot."""
    num_records = len(sizes)
    size_list = sizes.tolist()
    # category per target: latent class index for known labels (K_t = background), K_t + 1 for unknown
    category = np.empty((num_records, len(TARGETS)), dtype=np.int64)
    for j, target in enumerate(TARGETS):
        demands = np.array(list(counts[target].values()), dtype=np.int64)
        minimum = np.full(len(demands), MIN_RECORDS_PER_CLASS)
        minimum[-1] = 0
        category[:, j] = _deal(size_list, demands, minimum, rng)
    num_classes = np.array([len(CLASS_COUNTS[t]) for t in TARGETS])
    foreground = category < num_classes
    _give_foreground_labels(category, foreground, sizes, rng)
    known = category <= num_classes

    # Latent classes of unknown labels: inverse CDF of Table 1 frequencies; coupled time and technique reuse the
    # place quantile (which, for a known place, is drawn uniformly within its class's interval).
    cdfs = {t: np.concatenate([[0.0], np.cumsum(latent_class_probabilities(t))]) for t in TARGETS}
    place = TARGETS.index("place")
    u = rng.random((num_records, len(TARGETS)))
    latent = np.where(known, category, 0)
    for j, target in enumerate(TARGETS):
        cdf = cdfs[target]
        if target in ("time", "technique"):
            coupled = rng.random(num_records) < (TIME_COUPLING if target == "time" else TECHNIQUE_COUPLING)
            u[:, j] = np.where(coupled, u[:, place], u[:, j])
        drawn = np.minimum(np.searchsorted(cdf, u[:, j], side="right") - 1, len(cdf) - 2)
        latent[:, j] = np.where(known[:, j], latent[:, j], drawn)
        if target == "place":  # the quantile of a known place lies within its class
            lo, hi = cdf[latent[:, j]], cdf[latent[:, j] + 1]
            u[:, j] = np.where(known[:, j], lo + (hi - lo) * u[:, j], u[:, j])
    _couple_to_place(latent, foreground, sizes, u[:, place], rng)
    return Records(sizes=sizes, latent=latent, known=known)
