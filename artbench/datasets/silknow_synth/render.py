"""Rendering of ``silknow-synth``: every target drives its own visual factor, with per-record and per-image noise.

The class -> appearance mapping is fixed (independent of the seed): it defines the task. Classes are learnable but
overlap; minority classes have few examples and are hard, as in the real data.

* place -> colour palette: ground hue, lightness and a second hue; the 29 classes (and background) sit on a
  hue/lightness wheel with neighbouring classes overlapping under noise;
* material -> surface: animal fibre = saturated with a smooth specular sheen band, metal thread = sparse
  bright golden/silver glints, vegetal fibre = matte, desaturated and grainy with slub streaks;
* time -> weave: frequency (finer for later centuries) and orientation of a periodic background grating;
* technique -> pattern structure: embroidery = scattered short strokes, velvet = blurred pile shading,
  damask = tone-on-tone lattice, other techn. = mottled noise, resist dyeing = feathered ikat bands,
  tabby = fine checker, printed = hard-edged blocks, twill = diagonal lines, cannele = horizontal ribs;
* depiction -> repeated motif on top: flower = petal rosette, plant = stem with leaves, geom. shape = polygon,
  stripe = broad bands, text = rows of glyphs, animal = quadruped silhouette, fruit = cluster of discs,
  object = jar-like rectangles.

The background value of each target renders a level no foreground class uses (a free slot on the hue wheel, a
coarser weave than any century, concentric rings, a crescent motif). *material* has no background (Table 1).
Views of one record share the record's :class:`Appearance` and differ in crop, zoom, rotation, lighting and noise.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from artbench.datasets.silknow_reference import BACKGROUND_LABELS, CLASS_COUNTS
from artbench.datasets.silknow_synth.labels import latent_class_names

# --------------------------------------------------------------------------------------------------
# Appearance tables

_PLACE_SLOTS = len(CLASS_COUNTS["place"]) + 1  # 29 classes + background on the wheel
_PLACE_VALUES = (0.58, 0.74, 0.9)


def _place_palette(index: int) -> tuple[float, float, float]:
    """(ground hue, value, second-hue offset) of place class ``index`` (background = last index)."""
    slot = (index * 7) % _PLACE_SLOTS  # spread frequent classes around the wheel; background gets a free slot
    hue = slot / _PLACE_SLOTS
    value = _PLACE_VALUES[slot % len(_PLACE_VALUES)]
    offset = 0.2 + 0.6 * ((slot * 13) % _PLACE_SLOTS) / _PLACE_SLOTS
    return hue, value, offset


# time classes in Table 1 order -> chronological rank; background gets a weave coarser than any century
_TIME_RANK = {
    "13th c.": 0,
    "15th c.": 1,
    "16th c.": 2,
    "17th c.": 3,
    "18th c.": 4,
    "19th c.": 5,
    "20th c.": 6,
}


def _time_weave(index: int) -> tuple[float, float]:
    """(cycles per object unit, angle in radians) of the weave grating of time class ``index``."""
    names = list(CLASS_COUNTS["time"])
    if index >= len(names):
        return 2.0, math.radians(103.0)
    rank = _TIME_RANK[names[index]]
    return 3.0 * 1.2**rank, math.radians((rank * 180.0 / 7.0) % 180.0)


_TECHNIQUE_KIND = {name: name for name in CLASS_COUNTS["technique"]} | {BACKGROUND_LABELS["technique"]: "rings"}
_DEPICTION_KIND = {name: name for name in CLASS_COUNTS["depiction"]} | {BACKGROUND_LABELS["depiction"]: "crescent"}
_MATERIAL_KIND = {name: name for name in CLASS_COUNTS["material"]} | {BACKGROUND_LABELS["material"]: "plastic"}
_METAL_COLOURS = (np.array([1.0, 0.86, 0.45], np.float32), np.array([0.93, 0.95, 1.0], np.float32))


# --------------------------------------------------------------------------------------------------
# Vectorised procedural primitives (object coordinates, so that views of one record are consistent)


def _hash01(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic per-lattice-cell uniform numbers in [0, 1) (32-bit integer hash, vectorised).

    ``ix`` and ``iy`` hold integer-valued lattice coordinates (any numeric dtype).
    """
    h = ix.astype(np.int32).view(np.uint32) * np.uint32(0x9E3779B1)
    h += iy.astype(np.int32).view(np.uint32) * np.uint32(0x85EBCA77)
    h += np.uint32(salt & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _value_noise(x: np.ndarray, y: np.ndarray, freq_x: float, freq_y: float, salt: int) -> np.ndarray:
    """Smooth value noise in [0, 1] at the given lattice frequencies."""
    gx, gy = x * freq_x, y * freq_y
    ix, iy = np.floor(gx), np.floor(gy)
    fx, fy = gx - ix, gy - iy
    fx = fx * fx * (3.0 - 2.0 * fx)
    fy = fy * fy * (3.0 - 2.0 * fy)
    a = _hash01(ix, iy, salt)
    b = _hash01(ix + 1, iy, salt)
    c = _hash01(ix, iy + 1, salt)
    d = _hash01(ix + 1, iy + 1, salt)
    top = a + (b - a) * fx
    bottom = c + (d - c) * fx
    return top + (bottom - top) * fy


def _cells(x: np.ndarray, y: np.ndarray, n: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lattice cell indices and local coordinates in [-0.5, 0.5) for cells of size 1/n."""
    gx, gy = x * n, y * n
    ix, iy = np.floor(gx), np.floor(gy)
    return ix, iy, gx - ix - 0.5, gy - iy - 0.5


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    return c * x + s * y, -s * x + c * y


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)), np.float32)


# --------------------------------------------------------------------------------------------------
# Record ("object") parameters and rendering


@dataclass
class Appearance:
    """Appearance of one record, shared by all its images."""

    c1: np.ndarray
    c2: np.ndarray
    c3: np.ndarray
    material: str
    sheen: float
    sheen_angle: float
    sheen_pos: float
    sheen_width: float
    glint_prob: float
    glint_colour: np.ndarray
    weave_freq: float
    weave_angle: float
    weave_contrast: float
    technique: str
    tech_freq: float
    tech_contrast: float
    tech_angle: float
    depiction: str
    motif_centre: tuple[float, float]
    motif_scale: float
    motif_angle: float
    motif_period: float
    motif_opacity: float
    motif_variant: int
    motif_params: np.ndarray
    salt: int


def record_appearance(latent: np.ndarray, rng: np.random.Generator) -> Appearance:
    """The appearance of a record with latent classes ``latent`` (one index per target, in ``TARGETS`` order)."""
    place, material, time, technique, depiction = (int(v) for v in latent)
    hue, value, offset = _place_palette(place)
    material_name = _MATERIAL_KIND[latent_class_names("material")[material]]
    technique_name = _TECHNIQUE_KIND[latent_class_names("technique")[technique]]
    depiction_name = _DEPICTION_KIND[latent_class_names("depiction")[depiction]]

    sat = {
        "animal fibre": rng.uniform(0.5, 0.85),
        "metal thread": rng.uniform(0.35, 0.7),
        "vegetal fibre": rng.uniform(0.15, 0.45),
        "plastic": 0.95,
    }[material_name]
    h1 = hue + rng.normal(0.0, 0.03)
    h2 = h1 + offset + rng.normal(0.0, 0.08)
    v1 = value + rng.normal(0.0, 0.07)
    if material_name == "vegetal fibre":
        v1 *= 0.9
    if technique_name == "velvet":
        v1 *= 0.85
    c1 = _hsv(h1, sat, v1)
    if technique_name == "damask":  # tone-on-tone: pattern in the ground hue, darker
        c2 = _hsv(h1 + rng.normal(0.0, 0.01), sat * 1.05, v1 * rng.uniform(0.7, 0.82))
    else:
        c2 = _hsv(h2, sat * rng.uniform(0.8, 1.1), v1 * rng.uniform(0.6, 0.95))
    c3 = _hsv(h2 + rng.normal(0.0, 0.03), sat * rng.uniform(0.5, 0.9), min(1.0, v1 + rng.uniform(0.05, 0.25)))

    weave_freq, weave_angle = _time_weave(time)
    tech_freq = {
        "embroidery": rng.uniform(4.5, 6.0),
        "velvet": rng.uniform(2.5, 3.5),
        "damask": rng.uniform(1.5, 2.5),
        "other techn.": rng.uniform(4.0, 7.0),
        "resist dyeing": rng.uniform(1.5, 3.0),
        "tabby": rng.uniform(7.0, 9.0),
        "printed": rng.uniform(2.5, 4.0),
        "twill": rng.uniform(5.0, 7.0),
        "cannele": rng.uniform(5.0, 7.0),
        "rings": rng.uniform(3.0, 5.0),
    }[technique_name]
    motif_params = rng.random(16)
    return Appearance(
        c1=c1,
        c2=c2,
        c3=c3,
        material=material_name,
        sheen=rng.uniform(0.2, 0.5) if material_name == "animal fibre" else rng.uniform(0.0, 0.1),
        sheen_angle=rng.uniform(0.0, 2 * math.pi),
        sheen_pos=rng.uniform(-0.4, 0.4),
        sheen_width=rng.uniform(0.15, 0.35),
        glint_prob=rng.uniform(0.08, 0.3),
        glint_colour=_METAL_COLOURS[int(rng.integers(2))],
        weave_freq=weave_freq * math.exp(rng.normal(0.0, 0.07)),
        weave_angle=weave_angle + math.radians(rng.normal(0.0, 8.0)),
        weave_contrast=rng.uniform(0.12, 0.3) * (0.25 if technique_name == "velvet" else 1.0),
        technique=technique_name,
        tech_freq=tech_freq,
        tech_contrast=rng.uniform(0.45, 0.9),
        tech_angle=rng.normal(0.0, 0.08),
        depiction=depiction_name,
        motif_centre=(rng.normal(0.0, 0.1), rng.normal(0.0, 0.1)),
        motif_scale=rng.uniform(0.18, 0.28),
        motif_angle=rng.uniform(-math.pi, math.pi),
        motif_period=rng.uniform(0.9, 1.15),
        motif_opacity=rng.uniform(0.7, 0.95),
        motif_variant=int(rng.integers(3)),
        motif_params=motif_params,
        salt=int(rng.integers(0, 2**31)),
    )


def _technique_field(obj: Appearance, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(pattern-colour mix weight in [0, 1], optional luminance factor) for the technique's structure."""
    kind, f, salt = obj.technique, obj.tech_freq, obj.salt
    x, y = _rotate(x, y, obj.tech_angle)
    lum = None
    if kind == "embroidery":  # scattered short strokes, one per lattice cell
        ix, iy, lx, ly = _cells(x, y, f)
        angle = _hash01(ix, iy, salt + 11) * np.float32(math.pi)
        present = _hash01(ix, iy, salt + 12) < 0.75
        ca, sa = np.cos(angle), np.sin(angle)
        along = lx * ca + ly * sa
        across = ly * ca - lx * sa
        m = (present & (np.abs(along) < 0.38) & (np.abs(across) < 0.11)).astype(np.float32)
        lum = 1.0 + 0.12 * m
    elif kind == "velvet":  # blurred pile: smooth, deep shading
        n = _value_noise(x, y, f, f, salt + 21)
        m = 0.6 * n
        lum = 0.7 + 0.45 * _value_noise(x, y, 2 * f, 2 * f, salt + 22)
    elif kind == "damask":  # tone-on-tone ogee lattice repeat
        q = np.cos(2 * math.pi * f * x) * np.cos(2 * math.pi * f * y) + 0.35 * np.cos(4 * math.pi * f * (x + y))
        m = np.clip((q - 0.15) * 4.0, 0.0, 1.0)
    elif kind == "other techn.":  # heterogeneous: mottled noise
        m = np.clip((_value_noise(x, y, f, f, salt + 31) - 0.45) * 3.0, 0.0, 1.0)
    elif kind == "resist dyeing":  # ikat: vertical bands with feathered edges
        feather = _value_noise(x, y, 0.7, 12.0, salt + 41) - 0.5
        m = 1.0 / (1.0 + np.exp(-4.0 * np.sin(2 * math.pi * f * x + 2.5 * feather)))
    elif kind == "tabby":  # fine plain-weave checker
        m = 0.5 + 0.5 * np.sin(2 * math.pi * f * x) * np.sin(2 * math.pi * f * y)
        m = 0.6 * m
    elif kind == "printed":  # hard-edged blocks
        ix, iy, lx, ly = _cells(x, y, f)
        present = _hash01(ix, iy, salt + 61) < 0.55
        half = 0.25 + 0.2 * _hash01(ix, iy, salt + 62)
        m = (present & (np.abs(lx) < half) & (np.abs(ly) < half)).astype(np.float32)
    elif kind == "twill":  # diagonal lines
        t = (x + y) * f
        m = ((t - np.floor(t)) < 0.45).astype(np.float32)
    elif kind == "cannele":  # horizontal ribs, shaded
        rib = np.abs(np.sin(math.pi * f * y))
        m = 0.3 * rib
        lum = 0.72 + 0.38 * np.sqrt(rib)
    else:  # "rings" (background technique): concentric rings, used by no foreground class
        r = np.hypot(x - 0.2, y + 0.15) * f
        m = ((r - np.floor(r)) < 0.5).astype(np.float32)
    return m * np.float32(obj.tech_contrast), lum


def _motif_mask(obj: Appearance, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of the (repeated) depiction motif."""
    kind, p, variant = obj.depiction, obj.motif_params, obj.motif_variant
    cx, cy = obj.motif_centre
    if kind == "stripe":  # broad bands across the whole fabric
        _, v = _rotate(x - cx, y - cy, obj.motif_angle)
        t = v * (2.5 + 1.5 * p[0])
        return (t - np.floor(t)) < 0.25 + 0.15 * p[1]
    period = obj.motif_period
    dx = np.mod(x - cx + period / 2, period) - period / 2
    dy = np.mod(y - cy + period / 2, period) - period / 2
    u, v = _rotate(dx, dy, obj.motif_angle)
    u, v = u / obj.motif_scale, v / obj.motif_scale
    if kind == "flower":  # petal rosette with a hole in the middle
        r = np.hypot(u, v)
        cos_t = u / np.maximum(r, 1e-6)
        prev, cos_pt = np.ones_like(cos_t), cos_t  # Chebyshev recurrence: cos(p*theta) = T_p(cos(theta))
        for _ in range((5, 6, 8)[variant] - 1):
            prev, cos_pt = cos_pt, 2.0 * cos_t * cos_pt - prev
        petal = np.sqrt(np.clip(0.5 + 0.5 * cos_pt, 0.0, 1.0))  # = |cos(p*theta/2)|
        return (r < 0.45 + 0.55 * petal) & (r > 0.18)
    if kind == "plant":  # stem with pairs of leaves
        mask = (np.abs(u) < 0.06) & (np.abs(v) < 1.0)
        for k, vk in enumerate((-0.6, -0.15, 0.3, 0.75)[: 2 + variant]):
            side = 1.0 if k % 2 == 0 else -1.0
            lu, lv = _rotate(u - side * 0.32, v - vk, side * 0.7)
            mask |= (lu / 0.34) ** 2 + (lv / 0.13) ** 2 < 1.0
        return mask
    if kind == "geom. shape":  # regular polygon, filled or outlined
        n = (3, 4, 6)[variant]
        r, theta = np.hypot(u, v), np.arctan2(v, u)
        sector = 2 * math.pi / n
        d = r * math.cos(math.pi / n) / np.cos(np.mod(theta, sector) - sector / 2)
        return (d < 0.85) & ((d > 0.55) if p[0] < 0.5 else True)
    if kind == "text":  # rows of 3x3-bit glyphs
        inside = (np.abs(u) < 1.2) & (np.abs(v) < 0.8)
        row_t = (v + 0.8) / 0.55
        col_t = (u + 1.2) / 0.24
        row, col = np.floor(row_t), np.floor(col_t)
        fr, fc = row_t - row, col_t - col
        in_glyph = (fr < 0.62) & (fc < 0.78)
        bit_r, bit_c = np.floor(fr / 0.62 * 3), np.floor(fc / 0.78 * 3)
        bits = _hash01(col * 3 + bit_c, row * 3 + bit_r, obj.salt + 71) < 0.55
        return inside & in_glyph & bits
    if kind == "animal":  # quadruped silhouette
        mask = (u / 0.8) ** 2 + (v / 0.4) ** 2 < 1.0
        mask |= (u - 0.85) ** 2 + (v + 0.38) ** 2 < 0.28**2
        for lu in (-0.55, -0.28, 0.25, 0.52):
            mask |= (np.abs(u - lu) < 0.06) & (v > 0.1) & (v < 0.95)
        mask |= (u < -0.7) & (u > -1.15) & (np.abs(v + 0.15 + 0.4 * (u + 0.7)) < 0.05)
        return mask
    if kind == "fruit":  # cluster of discs with a leaf
        n = 3 + variant
        mask = np.zeros(u.shape, dtype=bool)
        for k in range(n):
            a = 2 * math.pi * (k / n + 0.3 * p[k])
            rr = 0.25 + 0.25 * p[k + 6]
            radius = 0.24 + 0.08 * p[k + 10]
            mask |= (u - rr * math.cos(a)) ** 2 + (v - rr * math.sin(a)) ** 2 < radius**2
        lu, lv = _rotate(u - 0.15, v + 0.75, 0.5)
        return mask | ((lu / 0.3) ** 2 + (lv / 0.1) ** 2 < 1.0)
    if kind == "object":  # jar: body, neck and lip rectangles
        body = (np.abs(u) < 0.45 + 0.1 * p[0]) & (v > -0.3) & (v < 0.9)
        neck = (np.abs(u) < 0.2) & (v > -0.75) & (v <= -0.3)
        lip = (np.abs(u) < 0.35) & (v > -0.88) & (v <= -0.75)
        return body | neck | lip
    # "crescent" (background depiction): a shape no foreground class uses
    return ((u**2 + v**2) < 0.9**2) & ((u - 0.35) ** 2 + (v + 0.2) ** 2 > 0.72**2)


@dataclass(frozen=True)
class PixelGrid:
    """Pixel-centre coordinates of a square image, shared by all its views."""

    xs: np.ndarray  # [S, S] pixel centre x in [-0.5, 0.5)
    ys: np.ndarray


def pixel_grid(size: int) -> PixelGrid:
    """The :class:`PixelGrid` of a ``size`` x ``size`` image."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size - 0.5).astype(np.float32)
    ys, xs = np.meshgrid(c, c, indexing="ij")
    return PixelGrid(xs=xs, ys=ys)


def render_view(obj: Appearance, grid: PixelGrid, rng: np.random.Generator) -> np.ndarray:
    """Render one view (photo) of a record as a channel-first ``[3, S, S]`` uint8 array."""
    # view: zoom, rotation and crop offset map image coordinates to object coordinates
    zoom = rng.uniform(0.85, 1.2)
    rot = rng.normal(0.0, math.radians(10.0))
    off_x, off_y = rng.uniform(-0.25, 0.25, size=2)
    x, y = _rotate(grid.xs, grid.ys, rot)
    x = x / np.float32(zoom) + np.float32(off_x)
    y = y / np.float32(zoom) + np.float32(off_y)
    c1, c2, c3 = (c[:, None, None] for c in (obj.c1, obj.c2, obj.c3))

    # technique: pattern structure mixing ground colour c1 and pattern colour c2
    mix, tech_lum = _technique_field(obj, x, y)
    rgb = c1 + (c2 - c1) * mix

    # depiction: motif drawn on top
    alpha = _motif_mask(obj, x, y).astype(np.float32) * np.float32(obj.motif_opacity)
    rgb += (c3 - rgb) * alpha

    # time: weave grating (frequency and orientation), modulating luminance
    wu, wv = _rotate(x, y, obj.weave_angle)
    phase = 2 * math.pi * obj.weave_freq
    weave = np.sin(phase * wu) + 0.3 * np.sin(2 * phase * wv)
    lum = 1.0 + np.float32(obj.weave_contrast) * weave
    if tech_lum is not None:
        lum *= tech_lum

    # material: surface (sheen, glints, grain)
    g = math.cos(obj.sheen_angle) * x + math.sin(obj.sheen_angle) * y
    if obj.material == "vegetal fibre":
        lum *= 0.88 + 0.24 * _value_noise(x, y, 2.0, 28.0, obj.salt + 81)
    if obj.material == "animal fibre":
        lum *= 0.92 + 0.25 * g
    rgb *= lum
    if obj.sheen > 0.0:
        band = np.exp(-(((g - obj.sheen_pos) / obj.sheen_width) ** 2)) * np.float32(obj.sheen)
        rgb += (1.0 - rgb) * band
    if obj.material == "metal thread":
        ix, iy, lx, ly = _cells(x, y, 9.0)
        present = _hash01(ix, iy, obj.salt + 91) < obj.glint_prob
        jx = _hash01(ix, iy, obj.salt + 92) - 0.5
        jy = _hash01(ix, iy, obj.salt + 93) - 0.5
        d2 = (lx - 0.5 * jx) ** 2 + (ly - 0.5 * jy) ** 2
        glint = np.exp(-d2 / 0.02) * present * np.float32(rng.uniform(0.7, 1.0))
        rgb += (obj.glint_colour[:, None, None] - rgb) * glint

    # photo: illumination gradient, exposure, colour cast, sensor noise
    direction = rng.uniform(0.0, 2 * math.pi)
    illum = 1.0 + rng.uniform(0.0, 0.25) * (math.cos(direction) * grid.xs + math.sin(direction) * grid.ys)
    gain = np.exp(rng.normal(0.0, 0.08)) * (1.0 + rng.normal(0.0, 0.03, size=3))
    rgb *= illum
    rgb *= gain.astype(np.float32)[:, None, None]
    sigma = rng.uniform(0.01, 0.03) + (0.04 if obj.material == "vegetal fibre" else 0.0)
    noise = rng.random(rgb.shape, dtype=np.float32) - np.float32(0.5)  # uniform noise with std sigma
    rgb += noise * np.float32(sigma * math.sqrt(12.0))
    rgb = np.clip(rgb, 0.0, 1.0, out=rgb)
    rgb *= 255.0
    rgb += 0.5
    return rgb.astype(np.uint8)


def to_image(chw: np.ndarray) -> Image.Image:
    """``[3, S, S]`` uint8 -> RGB PIL image (merging planes avoids a slow interleaving copy)."""
    return Image.merge("RGB", [Image.fromarray(plane) for plane in chw])
