"""Backgrounds for background-swap edits: generated rooms and the user's own images.

The generated scenes have to pass for the real thing to a person looking at the edited clip —
the newsroom experiment this product automates put a real bookshelf behind a real actress — so
they are built the way a webcam sees a room: a painted wall is never a flat fill (light falls
off, the paint has a texture, the sensor adds noise), a bookshelf has wood grain, shadows under
its shelves, books of many sizes and colours, some leaning, some gaps. This module holds the
painted walls and the materials (wood, books, shelves, windows, pictures); ``rooms.py`` renders
the office and the wall of bookshelves from them through a camera, in perspective and lit, and
registers them here. Every scene fills the whole frame because it is composited behind a person
mask.

Everything random comes from the ``rng`` the caller passes, so the same (name, size, rng state)
gives the same pixels whatever the thread count (OpenCV's SIMD paths may differ in the last bit
between CPU families, so bit-identity across machines is not promised). Sizes are relative to
the frame — physical sizes in metres where a room is drawn — so a scene reads the same at
224 px and at 480 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np


__all__ = ["SCENES", "WALL_PAINTS", "make_scene", "bookshelf_unit", "load_user_scenes",
           "user_scene", "IMAGE_SUFFIXES"]

# Wall paints as a webcam renders them under room light (a little darker and warmer than the
# paint chip), so a swapped wall has the exposure of a real one.
WALL_PAINTS: dict[str, tuple[float, float, float]] = {
    "white": (232.0, 230.0, 224.0),
    "grey": (190.0, 191.0, 188.0),
    "blue": (178.0, 196.0, 210.0),
    "green": (184.0, 197.0, 168.0),
    "beige": (220.0, 204.0, 178.0),
}
# "plain" draws from the named paints plus the two most common real-world ones.
_PLAIN_DRAW = tuple(WALL_PAINTS.values()) + ((236.0, 226.0, 208.0),   # warm white
                                             (200.0, 192.0, 178.0))   # greige

# Muted cloth and paper colours: real spines are rarely saturated, and a shelf of pure primaries
# reads as a toy.
_BOOK_COLOURS = np.array([
    (122, 38, 36), (94, 32, 40), (150, 62, 46), (178, 92, 48), (36, 46, 82), (52, 66, 104),
    (80, 100, 126), (40, 92, 98), (40, 70, 50), (58, 84, 58), (108, 110, 62), (176, 138, 64),
    (196, 160, 78), (168, 134, 96), (100, 66, 42), (72, 50, 36), (222, 212, 184), (232, 228, 214),
    (36, 34, 32), (118, 118, 112), (188, 142, 134), (88, 52, 76), (150, 174, 188), (206, 188, 150),
], dtype=np.float32)

_WOODS = np.array([
    (170, 124, 80),   # oak
    (110, 72, 46),    # walnut
    (184, 146, 102),  # pine
    (140, 84, 52),    # cherry
    (82, 58, 42),     # dark stained
], dtype=np.float32)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


# --------------------------------------------------------------------------- small helpers


def _smooth_noise(h: int, w: int, rng: np.random.Generator, cells_y: int, cells_x: int) -> np.ndarray:
    """Zero-mean, unit-ish noise that varies over about ``h/cells_y`` pixels: a coarse random grid
    upsampled bicubically, far cheaper than filtering full-resolution noise."""
    small = rng.standard_normal((max(2, cells_y), max(2, cells_x)), dtype=np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _light_field(h: int, w: int, rng: np.random.Generator, *, vignette: float,
                 tilt: float, blotch: float) -> np.ndarray:
    """Multiplicative shading [h, w]: a lamp-like falloff around an off-centre point, a gentle
    gradient from one side (a window or ceiling light) and faint low-frequency unevenness."""
    s = max(h, w)
    yy = ((np.arange(h, dtype=np.float32) + 0.5) - h / 2)[:, None] * (2.0 / s)
    xx = ((np.arange(w, dtype=np.float32) + 0.5) - w / 2)[None, :] * (2.0 / s)
    cx, cy = rng.uniform(-0.35, 0.35), rng.uniform(-0.45, 0.05)
    r2 = (xx - cx) ** 2 + (yy - cy) ** 2
    r2 /= max(float(r2.max()), 1e-6)
    angle = rng.uniform(0, 2 * math.pi)
    field = (1.0 - vignette * r2) * (1.0 + tilt * (xx * math.cos(angle) + yy * math.sin(angle)))
    if blotch > 0:
        field *= 1.0 + blotch * _smooth_noise(h, w, rng, 3, 4)
    return field.astype(np.float32, copy=False)


def _finish(img: np.ndarray, rng: np.random.Generator, *, noise: float = 1.6) -> np.ndarray:
    """Camera optics and sensor: a slight blur (no lens is pixel-sharp, and it anti-aliases every
    hard edge drawn above) and luminance noise, then uint8."""
    h, w = img.shape[:2]
    sigma = 0.45 + 0.35 * min(h, w) / 480.0
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += rng.standard_normal((h, w), dtype=np.float32)[..., None] * np.float32(noise)
    np.clip(img, 0.0, 255.0, out=img)
    img += 0.5
    return img.astype(np.uint8)


def _paste(canvas: np.ndarray, patch: np.ndarray, y0: int, x0: int) -> None:
    """Copy ``patch`` into ``canvas`` at (y0, x0), clipped to the canvas."""
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    ya, xa = max(0, y0), max(0, x0)
    yb, xb = min(h, y0 + ph), min(w, x0 + pw)
    if ya < yb and xa < xb:
        canvas[ya:yb, xa:xb] = patch[ya - y0:yb - y0, xa - x0:xb - x0]


def _scale_region(canvas: np.ndarray, y0: int, y1: int, x0: int, x1: int, factor) -> None:
    h, w = canvas.shape[:2]
    ya, yb, xa, xb = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    if ya < yb and xa < xb:
        f = factor
        if isinstance(f, np.ndarray):
            f = f[ya - y0:yb - y0, xa - x0:xb - x0]
        canvas[ya:yb, xa:xb] *= f


def _fill(canvas: np.ndarray, y0: int, y1: int, x0: int, x1: int, colour) -> None:
    h, w = canvas.shape[:2]
    ya, yb, xa, xb = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    if ya < yb and xa < xb:
        canvas[ya:yb, xa:xb] = colour


def _blend_alpha(canvas: np.ndarray, alpha: np.ndarray, colour) -> None:
    """canvas = canvas·(1−α) + colour·α, α float [h, w] in [0, 1]; colour broadcastable."""
    a = alpha[..., None]
    canvas *= 1.0 - a
    canvas += a * np.asarray(colour, dtype=np.float32)


def _fill_poly_aa(canvas: np.ndarray, polys: list[np.ndarray], colour, opacity: float = 1.0) -> None:
    """Blend anti-aliased filled polygons (float [N, 2] x, y points) into ``canvas``. OpenCV
    anti-aliases only 8-bit images, so the coverage is drawn into a uint8 mask over the shapes'
    bounding box (sub-pixel precise through ``shift``) and used as alpha."""
    h, w = canvas.shape[:2]
    pts = np.concatenate(polys)
    x0, y0 = max(0, int(pts[:, 0].min()) - 1), max(0, int(pts[:, 1].min()) - 1)
    x1, y1 = min(w, int(pts[:, 0].max()) + 2), min(h, int(pts[:, 1].max()) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shifted = [np.round((p - (x0, y0)) * 16).astype(np.int32) for p in polys]
    cv2.fillPoly(mask, shifted, 255, cv2.LINE_AA, shift=4)
    a = mask.astype(np.float32) * np.float32(opacity / 255)
    colour = np.asarray(colour, np.float32)
    if colour.ndim == 3:
        colour = colour[y0:y1, x0:x1]
    _blend_alpha(canvas[y0:y1, x0:x1], a, colour)


def _soft_shadow(canvas: np.ndarray, y0: int, y1: int, x0: int, x1: int, *, dy: int, dx: int,
                 blur: float, strength: float) -> None:
    """Darken the wall behind a rectangular object: its silhouette, offset away from the light and
    blurred, as a hanging frame or a cabinet casts on a wall."""
    h, w = canvas.shape[:2]
    pad = int(3 * blur) + 1
    ya, yb = max(0, y0 + dy - pad), min(h, y1 + dy + pad)
    xa, xb = max(0, x0 + dx - pad), min(w, x1 + dx + pad)
    if ya >= yb or xa >= xb:
        return
    m = np.zeros((yb - ya, xb - xa), np.float32)
    m[max(0, y0 + dy - ya):max(0, y1 + dy - ya), max(0, x0 + dx - xa):max(0, x1 + dx - xa)] = 1.0
    m = cv2.GaussianBlur(m, (0, 0), max(blur, 0.5))
    canvas[ya:yb, xa:xb] *= (1.0 - strength * m)[..., None]


def _jitter_colour(base, rng: np.random.Generator, *, bright: float, tint: float) -> np.ndarray:
    u = rng.random(4)
    gain = (1.0 + bright * (2 * u[0] - 1)) * (1.0 + tint * (2 * u[1:] - 1))
    # minimum/maximum rather than np.clip: this runs for every book, and np.clip's Python
    # wrapper costs more than the arithmetic.
    return np.minimum(np.maximum(np.asarray(base, np.float32) * gain.astype(np.float32), 8), 248)


# --------------------------------------------------------------------------- materials


def _wood(length: int, across: int, rng: np.random.Generator, colour: np.ndarray, *,
          ppm: float) -> np.ndarray:
    """Flat-sawn wood [across, length, 3] with the grain along axis 1, at ``ppm`` pixels per
    metre: wavy growth lines (a cosine of the across-grain coordinate warped by smooth noise,
    sharpened into thin dark lines), fine streaks stretched along the grain, and slow tone
    changes. Sizes are physical, so a door seen from across a room shows a fine figure, not
    zebra stripes."""
    length, across = max(1, length), max(1, across)
    v = (np.arange(across, dtype=np.float32) + rng.uniform(0, 100))[:, None]
    raw = ppm * rng.uniform(0.008, 0.02)  # ring spacing of 8-20 mm
    # Lines closer than ~2.5 px would alias into moiré; draw them wider and fainter instead.
    period = np.float32(max(raw, 2.5))
    contrast = float(np.clip(raw / 3.0, 0.35, 1.0))
    # Growth lines are contours of a slowly bent field: a broad warp of a few ring widths
    # (lines converge into the long arches of flat-sawn boards) plus a little wander. Each line
    # gets its own strength, so the figure is irregular rather than a regular comb.
    warp = _smooth_noise(across, length, rng, max(2, int(across / (0.25 * ppm))),
                         max(2, int(length / (0.55 * ppm))))
    warp *= np.float32(rng.uniform(1.5, 3.5) * period)
    warp += _smooth_noise(across, length, rng, max(2, int(across / (0.06 * ppm))),
                          max(2, int(length / (0.15 * ppm)))) * (0.15 * period)
    phase = (v + warp) / period
    ring_strength = (contrast * (0.25 + 0.75 * rng.random(64) ** 1.5)).astype(np.float32)
    rings = 0.5 + 0.5 * np.cos(np.float32(2 * math.pi) * phase)
    rings = rings * rings * rings * np.take(ring_strength, np.floor(phase).astype(np.int32) % 64)
    streak = rng.standard_normal((across, max(2, length // 14)), dtype=np.float32)
    streak = cv2.resize(streak, (length, across), interpolation=cv2.INTER_LINEAR)
    tone = _smooth_noise(across, length, rng, 2, max(2, length // 150))
    lum = 1.0 - 0.2 * rings + 0.045 * streak + 0.05 * tone
    # Dark grain is also more saturated (late wood), not just darker.
    dark = np.clip(1.0 - lum, 0, 1)[..., None]
    out = colour[None, None, :] * lum[..., None]
    out -= dark * (colour * np.float32([0.0, 0.12, 0.25]))[None, None, :]
    return out.astype(np.float32, copy=False)


def _wall(h: int, w: int, colour, rng: np.random.Generator, *, skirting: float = 0.35) -> np.ndarray:
    """A painted wall [h, w, 3] float32 (before camera finish)."""
    c = np.asarray(colour, dtype=np.float32) * (1.0 + rng.uniform(-0.02, 0.02, 3)).astype(np.float32)
    shade = _light_field(h, w, rng, vignette=rng.uniform(0.12, 0.24), tilt=rng.uniform(0.03, 0.09),
                         blotch=0.012)
    # Roller stipple: noise at the scale of a couple of pixels, a percent of the brightness.
    stipple = rng.standard_normal((max(2, h // 2), max(2, w // 2)), dtype=np.float32)
    stipple = cv2.resize(stipple, (w, h), interpolation=cv2.INTER_LINEAR)
    shade *= 1.0 + 0.011 * stipple
    img = shade[..., None] * c[None, None, :]
    if rng.random() < skirting:
        _skirting(img, rng, c)
    return img


def _skirting(img: np.ndarray, rng: np.random.Generator, wall: np.ndarray) -> None:
    """A low satin-white (or wall-coloured) baseboard along the bottom edge, its top lip catching
    the light, with a thin shadow line on the wall above it."""
    h, w = img.shape[:2]
    bh = min(h, max(2, int(round(h * rng.uniform(0.035, 0.06)))))
    top = h - bh
    paint = np.float32([236, 234, 228]) if rng.random() < 0.7 else wall * np.float32(0.94)
    grad = np.linspace(1.0, 0.86, bh, dtype=np.float32)[:, None, None]
    img[top:] = paint[None, None, :] * grad * (img[top:, :, :1] / max(float(wall[0]), 1.0))
    lip = max(1, bh // 6)
    img[top:top + lip] *= 1.08
    img[max(0, top - lip):top] *= 0.9


# --------------------------------------------------------------------------- books


@dataclass(slots=True)
class _Book:
    """One spine, standing on a floor line. ``palette`` rows: body, three bands, lettering, top
    edge. ``bands`` [3, 2]: first and end row of each band counted from the book's top (empty
    when unused). ``text``: (column offset, column width, first row, end row, letter height) or
    None; ``key``: the book's offset into the shared lettering table."""

    x: int
    w: int
    h: int
    flat: bool
    palette: np.ndarray
    bands: np.ndarray
    text: tuple | None
    key: int


_LIGHT_INK = np.float32([214, 196, 150])  # gilt / cream lettering
_DARK_INK = np.float32([40, 34, 30])
_NO_TEXT = (0, 0, 0, 0, 1)


def _new_book(x: int, bw: int, bh: int, colour: np.ndarray, rng: np.random.Generator) -> _Book:
    """Draw a spine design: cloth hardback with rules, jacket with a title panel, paperback with
    a light head block and a publisher mark, or plain — most with a line of lettering."""
    bw, bh = max(1, bw), max(2, bh)
    u = rng.random(11)  # one draw per book: ~300 books a frame make scalar draws add up
    dark = sum(colour.tolist()) <= 420
    ink = _LIGHT_INK if dark else _DARK_INK
    palette = np.empty((6, 3), np.float32)
    palette[:] = colour
    bands = np.zeros((3, 2), np.int32)

    def band(k: int, top_frac: float, rows: float, c) -> None:
        a = int(round(top_frac * bh))
        bands[k] = (a, a + max(1, int(round(rows))))
        palette[1 + k] = c

    flat = False
    text_on = colour
    if u[0] < 0.38:    # cloth hardback: gilt or dark rules near head and tail
        rule = max(1.0, 0.012 * bh)
        tint = ink * np.float32(0.85) + colour * np.float32(0.15)
        band(0, 0.05 + 0.05 * u[1], rule, tint)
        band(1, 0.86 + 0.06 * u[2], rule, tint)
        if u[3] < 0.5:
            band(2, 0.05 + 0.05 * u[1] + 2.5 * rule / bh, rule, tint)
    elif u[0] < 0.7:   # jacket: a contrasting title panel the lettering sits on
        other = _BOOK_COLOURS[int(u[1] * len(_BOOK_COLOURS))]
        text_on = other * np.float32(0.85) + colour * np.float32(0.15)
        band(0, 0.08 + 0.17 * u[2], bh * (0.12 + 0.18 * u[3]), text_on)
        ink = _LIGHT_INK if sum(text_on.tolist()) <= 420 else _DARK_INK
    elif u[0] < 0.85:  # paperback: flat spine, light head block, publisher mark at the tail
        flat = True
        band(0, 0.0, bh * (0.08 + 0.12 * u[1]), colour * np.float32(0.72) if not dark
             else np.float32([224, 218, 202]))
        band(1, 0.84 + 0.06 * u[2], max(2.0, 0.03 * bh), ink)
    strength = np.float32(0.45 + 0.25 * u[4])
    palette[4] = text_on * (1 - strength) + ink * strength
    palette[5] = np.minimum(colour * np.float32(1.1) + np.float32(12), 255)  # top edge in the light
    text = None
    if bw >= 5 and u[5] < 0.75:
        cw = max(1, int(round(bw * (0.22 + 0.14 * u[6]))))
        letter = max(2, int(round(cw * (0.8 + 0.4 * u[7]))))
        text = ((bw - cw) // 2, cw, int(bh * (0.2 + 0.14 * u[8])), int(bh * (0.55 + 0.25 * u[9])), letter)
    return _Book(x, bw, bh, flat, palette, bands, text, int(u[10] * (1 << 20)))


def _render_books(region: np.ndarray, floor: int, books: list[_Book], table: np.ndarray) -> None:
    """Draw upright ``books`` into ``region`` [rows, W, 3] in one vectorised pass, their bottoms
    on row ``floor`` (which may lie below the region). A per-pixel material index (body, band,
    lettering, edge) gathered from per-book palettes, rather than a patch per book, keeps a full
    shelf wall (~300 spines at 480 px) within a few milliseconds."""
    rows, w = region.shape[:2]
    if not books or rows == 0:
        return
    idx = np.full(w, -1, np.intp)
    for i, b in enumerate(books):
        idx[max(0, b.x):max(0, min(w, b.x + b.w))] = i
    valid = idx >= 0
    height = np.array([b.h for b in books], np.int32)
    r0 = int(np.clip(floor - height.max(), 0, rows))
    if r0 >= rows or not valid.any():
        return
    bi = np.maximum(idx, 0)
    top_row = np.where(valid, (floor - height)[bi], rows)  # no-book columns: "below the region"
    dtop = np.arange(r0, rows, dtype=np.int32)[:, None] - top_row[None, :]  # 0 on each top row
    mat = np.zeros(dtop.shape, np.int32)
    bands = np.stack([b.bands for b in books])[bi]
    for k in range(3):
        np.putmask(mat, (dtop >= bands[None, :, k, 0]) & (dtop < bands[None, :, k, 1]), 1 + k)

    texts = [b.text or _NO_TEXT for b in books]
    tx0, tcw, t0, t1, letter = (np.array(v, np.int32) for v in zip(*texts))
    rel = np.arange(w) - np.array([b.x for b in books])[bi]
    tcols = np.flatnonzero(valid & (rel >= tx0[bi]) & (rel < tx0[bi] + tcw[bi]))
    if tcols.size:
        tb = bi[tcols]
        dt = dtop[:, tcols]
        d = dt - t0[tb]
        li = d // letter[tb]
        key = np.array([b.key for b in books])[tb]
        # Letters with a one-row gap between them and some missing (word spaces): reads as a
        # title, not as a barcode.
        m = ((d >= 0) & (dt < t1[tb]) & (d - li * letter[tb] < letter[tb] - 1)
             & (table[(key + li) % table.size] < 0.84))
        sub = mat[:, tcols]
        np.putmask(sub, m, 4)
        mat[:, tcols] = sub
    np.putmask(mat, dtop == 0, 5)
    mat += (bi * 6).astype(np.int32)[None, :]

    width = np.array([b.w for b in books], np.float32)[bi]
    s = np.sin(np.float32(np.pi) * (rel + np.float32(0.5)) / width)
    # A cloth spine is rounded and catches light in the middle; a paperback's is flat.
    flat = np.array([b.flat for b in books])[bi]
    across = np.where(flat, 0.94 + 0.06 * s, 0.72 + 0.28 * np.abs(s) ** 0.6).astype(np.float32)
    shade = np.float32(1.04) - np.float32(0.11) * np.clip(dtop / height[bi].astype(np.float32), 0, 1)
    shade *= across[None, :]
    inside = dtop >= 0
    # Channel by channel: numpy is slow on arrays whose innermost axis has length 3.
    palette = np.concatenate([b.palette for b in books]).T
    view = region[r0:].transpose(2, 0, 1)
    for c in range(3):
        albedo = np.take(palette[c], mat)
        albedo *= shade
        np.copyto(view[c], albedo, where=inside)


def _book_patch(book: _Book, table: np.ndarray) -> np.ndarray:
    """One spine on its own [h, w, 3], for the books drawn tilted or lying flat."""
    patch = np.zeros((book.h, book.w, 3), np.float32)
    _render_books(patch, book.h, [_Book(0, book.w, book.h, book.flat, book.palette, book.bands,
                                        book.text, book.key)], table)
    return patch


def _draw_book_rotated(canvas: np.ndarray, patch: np.ndarray, pivot: tuple[float, float],
                       angle: float) -> None:
    """Draw ``patch`` tilted by ``angle`` (radians, top toward −x) about its bottom-left corner
    placed at ``pivot`` (x, y): a book leaning on its left neighbour."""
    bh, bw = patch.shape[:2]
    px, py = pivot
    ca, sa = math.cos(angle), math.sin(angle)
    # Patch point (x, y) relative to its bottom-left corner (x, y − bh) maps to
    # (px + x·cos + (y−bh)·sin, py − x·sin + (y−bh)·cos).
    corners = [(0, 0), (bw, 0), (0, bh), (bw, bh)]
    pts = [(px + x * ca + (y - bh) * sa, py - x * sa + (y - bh) * ca) for x, y in corners]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    h, w = canvas.shape[:2]
    xa, xb = max(0, int(math.floor(min(xs))) - 1), min(w, int(math.ceil(max(xs))) + 1)
    ya, yb = max(0, int(math.floor(min(ys))) - 1), min(h, int(math.ceil(max(ys))) + 1)
    if xa >= xb or ya >= yb:
        return
    m = np.float32([[ca, sa, px - bh * sa - xa], [-sa, ca, py - bh * ca - ya]])
    size = (xb - xa, yb - ya)
    warped = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(np.ones((bh, bw), np.float32), m, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    # Bilinear warping against a zero border gives colour already multiplied by coverage.
    roi = canvas[ya:yb, xa:xb]
    roi *= (1.0 - alpha)[..., None]
    roi += warped


def _random_book_colour(rng: np.random.Generator) -> np.ndarray:
    return _jitter_colour(_BOOK_COLOURS[rng.integers(len(_BOOK_COLOURS))], rng, bright=0.15, tint=0.07)


def _layout_compartment(x0: int, x1: int, inner: int, pitch: float, rng: np.random.Generator,
                        upright: list[_Book], extras: list[tuple]) -> None:
    """Plan the books of one compartment (columns ``x0..x1``, ``inner`` rows tall): upright
    spines go to ``upright`` (x in canvas columns), leaning books and flat stacks to ``extras``
    as ("lean", book, pivot x, angle, leans_right) and ("stack", x, width)."""
    if inner < 4 or x1 - x0 < 3:
        return
    local: list = []
    x = rng.uniform(0.0, 0.03) * pitch
    span = x1 - x0
    # A shelf is sometimes only partly filled: the last book leans into the free space.
    stop = span if rng.random() < 0.82 else span * rng.uniform(0.5, 0.85)
    series = 0
    colour, bw, bh = _BOOK_COLOURS[0], 1.0, 1.0
    prev_h = None
    while True:
        r = rng.random()
        if r < 0.025 and prev_h is not None:
            x += rng.uniform(0.1, 0.3) * pitch  # a gap where a book has been taken out
            prev_h = None
            continue
        if r < 0.06 and prev_h is None and stop - x > 0.6 * pitch:
            width = rng.uniform(0.45, 0.62) * pitch
            local.append(("stack", x, width))
            x += width + rng.uniform(0.01, 0.05) * pitch
            continue
        if series > 0:   # sets and series share colour and height
            series -= 1
            bw *= rng.uniform(0.92, 1.08)
            bh = min(bh * rng.uniform(0.98, 1.02), inner - 2)
        else:
            colour = _random_book_colour(rng)
            # Spines are 1.5–5 cm on a ~33 cm shelf pitch; thick ones are rarer.
            bw = pitch * (0.045 + 0.1 * rng.beta(1.6, 3.2))
            bh = min(pitch * rng.uniform(0.56, 0.9), inner - 2)
            series = int(rng.integers(1, 5)) if rng.random() < 0.25 else 0
        bwi, bhi = max(1, int(round(bw))), max(3, int(round(bh)))
        if x + bwi > stop:
            break
        local.append(("book", x, bwi, bhi, colour))
        x += bwi
        prev_h = bhi
    lean = None
    space = span - x
    if prev_h is not None and space > 0.12 * pitch and rng.random() < 0.75:
        bwi = max(1, int(round(pitch * rng.uniform(0.05, 0.11))))
        bhi = max(3, int(round(min(pitch * rng.uniform(0.6, 0.86), inner - 2))))
        angle = rng.uniform(0.12, 0.45)
        # The top rests on the neighbour's side, or on its top corner if the neighbour is short.
        reach = min(bhi * math.sin(angle), prev_h * math.tan(angle))
        if reach + bwi * math.cos(angle) < space - 1:
            lean = (x + reach, bwi, bhi, _random_book_colour(rng), angle)
    mirror = rng.random() < 0.5
    for item in local:
        if item[0] == "stack":
            _, sx, width = item
            sx = span - sx - width if mirror else sx
            extras.append(("stack", x0 + sx, width))
        else:
            _, bx, bwi, bhi, colour = item
            bx = span - bx - bwi if mirror else bx
            upright.append(_new_book(x0 + int(round(bx)), bwi, bhi, colour, rng))
    if lean is not None:
        px, bwi, bhi, colour, angle = lean
        book = _new_book(0, bwi, bhi, colour, rng)
        extras.append(("lean", book, x0 + (span - px if mirror else px), angle, mirror))


def _draw_extras(canvas: np.ndarray, floor: int, extras: list[tuple], inner: int, pitch: float,
                 rng: np.random.Generator, table: np.ndarray) -> None:
    h, w = canvas.shape[:2]
    for item in extras:
        if item[0] == "lean":
            _, book, px, angle, to_right = item
            patch = _book_patch(book, table)
            if to_right:
                # Mirror image of a left lean: draw into the flipped canvas.
                _draw_book_rotated(canvas[:, ::-1], np.ascontiguousarray(patch[:, ::-1]),
                                   (w - px, floor), angle)
            else:
                _draw_book_rotated(canvas, patch, (px, floor), angle)
            continue
        # Books lying flat, spines out, each a little offset: how people store the tall ones.
        _, x, width = item
        y = floor
        for _ in range(int(rng.integers(2, 6))):
            th = max(2, int(round(pitch * rng.uniform(0.035, 0.075))))
            if y - th < floor - inner + 2:
                break
            length = max(4, int(round(width * rng.uniform(0.82, 1.0))))
            book = _new_book(0, th, length, _random_book_colour(rng), rng)
            patch = np.rot90(_book_patch(book, table), 1 if rng.random() < 0.5 else -1)
            _paste(canvas, patch, y - th, int(round(x + (width - length) * rng.random())))
            y -= th


# --------------------------------------------------------------------------- bookshelf


def _render_shelf(h: int, w: int, rng: np.random.Generator, *, framed: bool,
                  pitch: float | None = None) -> np.ndarray:
    """A bookshelf [h, w, 3] float32. ``framed``: a whole unit (top, side panels, plinth);
    otherwise a close view of a wall of shelves that runs past every edge of the frame, about
    three shelves high unless ``pitch`` (pixels between shelves) says otherwise."""
    wood = _jitter_colour(_WOODS[rng.integers(len(_WOODS))], rng, bright=0.08, tint=0.03)
    bay_ratio = rng.uniform(2.0, 2.6)  # a bay is ~80 cm wide on a ~33 cm shelf pitch
    side = top = plinth = 0
    if framed:
        side = max(2, int(round(min(w, h) * 0.03)))
        top = max(2, int(round(h * 0.025)))
        plinth = max(2, int(round(h * rng.uniform(0.05, 0.08))))
        inner_h, inner_w = max(1, h - top - plinth), max(1, w - 2 * side)
        # The box gives only an aspect ratio: pick the shelf count whose bays come out closest
        # to real proportions, preferring the common four-ish shelves.
        best = None
        for n in range(1, 9):
            p = inner_h / n
            bays = max(1, int(round(inner_w / (bay_ratio * p))))
            err = abs(math.log(max(inner_w / bays, 1) / (bay_ratio * p))) + 0.12 * abs(n - 4)
            if best is None or err < best[0]:
                best = (err, n, bays)
        _, n_rows, n_bays = best
        pitch = inner_h / n_rows
        t = max(2, int(round(pitch * 0.065)))
        board_ys = [int(round(top + k * pitch - t)) for k in range(1, n_rows)] + [h - plinth]
        row_tops = [top] + [y + t for y in board_ys[:-1]]
        bay_w = (inner_w + t) / n_bays
        upright_xs = [int(round(side + j * bay_w - t)) for j in range(1, n_bays)]
        edges = [side] + [u + t for u in upright_xs]
        ends = upright_xs + [w - side]
    else:
        pitch = h / rng.uniform(2.8, 3.5) if pitch is None else pitch
        t = max(2, int(round(pitch * 0.065)))
        phase = rng.uniform(0.15, 0.85) * pitch
        ys = [int(round(phase + k * pitch)) for k in range(-1, int(h / pitch) + 2)]
        row_tops, board_ys = [y + t for y in ys[:-1]], ys[1:]
        bay_w = bay_ratio * pitch
        xphase = rng.uniform(0.2, 0.8) * bay_w
        upright_xs = [int(round(xphase + j * bay_w)) for j in range(-1, int(w / bay_w) + 2)]
        edges, ends = [u + t for u in upright_xs[:-1]], upright_xs[1:]

    ppm = pitch / 0.33  # shelves are ~33 cm apart
    # Back panel: the same wood, much darker (deep inside the shelf, out of the light), grain
    # running up. Half resolution is plenty for something mostly hidden behind books.
    hh, hw = max(2, h // 2), max(2, w // 2)
    back = np.ascontiguousarray(_wood(hh, hw, rng, wood * np.float32(0.5), ppm=ppm / 2).transpose(1, 0, 2))
    canvas = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR)
    table = rng.random(4096).astype(np.float32)

    for y_top, y_floor in zip(row_tops, board_ys):
        inner = y_floor - y_top
        ra, rb = max(0, y_top), min(h, y_floor)
        if ra >= rb:
            continue
        upright: list[_Book] = []
        extras: list[tuple] = []
        for x0, x1 in zip(edges, ends):
            if x1 > 0 and x0 < w:
                _layout_compartment(x0, x1, inner, pitch, rng, upright, extras)
        # Below the camera's eye line the shelf's top face shows as a strip in front of the
        # books (they stand ~3 cm back from the edge); the camera is ~2 m away.
        below = (y_floor - h / 2) / ppm
        lip = int(round(0.03 * max(below, 0.0) / 2.0 * ppm))
        floor = y_floor - lip
        region = canvas[ra:rb]
        if upright:
            _render_books(region, floor - ra, upright, table)
        _draw_extras(canvas, floor, extras, inner - lip, pitch, rng, table)
        if lip > 0:
            face = _wood(w, lip, rng, wood * np.float32(1.12), ppm=ppm)
            face[:1] *= 0.8  # contact shadow along the backs of the books
            _paste(canvas, face, floor, 0)
        # Ambient occlusion: the shelf above and the uprights shade each compartment's top and
        # sides, and the tops of the books sit in that shadow.
        fy = 1.0 - 0.42 * np.exp(-(np.arange(ra, rb, dtype=np.float32) - y_top) / (0.16 * pitch))
        fx = np.ones(w, np.float32)
        cx = np.arange(w, dtype=np.float32)
        for x0, x1 in zip(edges, ends):
            fx *= 1.0 - 0.25 * np.exp(-np.clip(cx - x0, 0, None) / (0.08 * pitch)) * (cx < x1)
            fx *= 1.0 - 0.25 * np.exp(-np.clip(x1 - 1 - cx, 0, None) / (0.08 * pitch)) * (cx >= x0)
        region *= (fy[:, None] * fx[None, :])[..., None]

    # Boards in front of everything, each with a lit top lip and a darker underside.
    for y in board_ys:
        board = _wood(w, t, rng, wood, ppm=ppm)
        board[:1] *= 1.18
        board[-1:] *= 0.7
        _paste(canvas, board, y, 0)
    for x in upright_xs:
        post = np.ascontiguousarray(_wood(h, t, rng, wood * np.float32(0.96), ppm=ppm).transpose(1, 0, 2))
        post[:, :1] *= 1.12
        post[:, -1:] *= 0.75
        _paste(canvas, post, 0, x)
    if framed:
        for x0 in (0, w - side):
            post = np.ascontiguousarray(_wood(h, side, rng, wood, ppm=ppm).transpose(1, 0, 2))
            post[:, :1] *= 1.1
            post[:, -1:] *= 0.8
            _paste(canvas, post, 0, x0)
        top_board = _wood(w, top, rng, wood * np.float32(1.05), ppm=ppm)
        top_board[-1:] *= 0.75
        _paste(canvas, top_board, 0, 0)
        kick = _wood(w, plinth, rng, wood * np.float32(0.85), ppm=ppm)
        kick[:1] *= 0.7
        _paste(canvas, kick, h - plinth, 0)
    canvas *= _light_field(h, w, rng, vignette=rng.uniform(0.15, 0.3), tilt=rng.uniform(0.04, 0.1),
                           blotch=0.03)[..., None]
    # Auto-exposure: a webcam meters on the whole frame, so a shelf that fills it is lifted
    # toward mid-grey (not all the way: walnut still reads as dark wood). A unit is pasted into
    # a room the camera has already metered, so it keeps its own brightness.
    target = rng.uniform(88.0, 108.0)
    if not framed:
        canvas *= np.float32(np.clip(target / max(float(canvas.mean()), 1.0), 1.0, 1.45))
    return canvas


def bookshelf_unit(height: int, width: int, *, rng: np.random.Generator) -> np.ndarray:
    """A whole bookshelf unit, uint8 [height, width, 3] RGB: side panels, top, plinth, shelves of
    books. The number of shelves and bays follows the aspect ratio (about 33 cm between shelves,
    80 cm bays), so a tall narrow box gets a tall narrow shelf."""
    height, width = _check_size(height, width)
    _check_rng(rng)
    return _finish(_render_shelf(height, width, rng, framed=True), rng, noise=1.8)


# --------------------------------------------------------------------------- wall decorations
# (used by rooms.py, which renders the office and the wall of shelves through a camera)


def _window(img: np.ndarray, x0: int, x1: int, y0: int, y1: int, s: int, rng: np.random.Generator,
            *, light_from_left: bool) -> None:
    """A window in a painted or aluminium frame, with sill, showing a blown-out, out-of-focus
    exterior, sometimes behind part-lowered venetian blinds."""
    fw = max(2, int(round(s * rng.uniform(0.018, 0.028))))
    gw, gh = max(2, x1 - x0 - 2 * fw), max(2, y1 - y0 - 2 * fw)
    # Exterior: over-exposed sky and out-of-focus trees or buildings, painted at low resolution
    # and upscaled, which is what blurs it like a lens focused on the room.
    lh, lw = max(4, gh // 6), max(4, gw // 6)
    yy = np.linspace(0, 1, lh, dtype=np.float32)[:, None, None]
    sky = np.float32([206, 224, 242]) * (1 - yy) + np.float32([236, 240, 242]) * yy
    ext = np.broadcast_to(sky, (lh, lw, 3)).copy()
    horizon = rng.uniform(0.35, 0.7)
    if rng.random() < 0.6:   # trees
        for _ in range(int(rng.integers(4, 9))):
            cx, cy = rng.uniform(0, lw), rng.uniform(horizon, 1.1) * lh
            r = rng.uniform(0.12, 0.3) * lw
            g = np.float32([70, 110, 60]) * np.float32(rng.uniform(0.8, 1.3))
            cv2.circle(ext, (int(cx), int(cy)), max(1, int(r)), g.tolist(), -1)
    else:                    # buildings across the street
        x = -rng.uniform(0, 0.2) * lw
        while x < lw:
            bw_ = rng.uniform(0.15, 0.4) * lw
            top = rng.uniform(horizon - 0.25, horizon + 0.1) * lh
            c = np.float32([168, 164, 158]) * np.float32(rng.uniform(0.8, 1.15))
            cv2.rectangle(ext, (int(x), int(top)), (int(x + bw_), lh), c.tolist(), -1)
            x += bw_ + rng.uniform(0, 0.05) * lw
    ext = cv2.GaussianBlur(ext, (0, 0), 1.2)
    ext = cv2.resize(ext, (gw, gh), interpolation=cv2.INTER_CUBIC)
    ext = ext * np.float32(0.55) + np.float32(255 * 0.45)  # exposure set for the room: it blows out
    if rng.random() < 0.5:
        # Venetian blinds, lowered part way: slats lit from behind with a bright gap between.
        period = max(3, int(round(s * rng.uniform(0.028, 0.04))))
        lowered = int(gh * rng.uniform(0.45, 1.0))
        slat_colour = np.float32([228, 226, 220]) if rng.random() < 0.7 else np.float32([196, 184, 160])
        ph = np.arange(lowered) % period / period
        shade = (0.78 + 0.22 * np.sin(np.pi * ph)).astype(np.float32)
        slats = slat_colour[None, None, :] * shade[:, None, None]
        gap = ph > 0.86
        slats[gap] = np.float32(250)
        ext[:lowered] = slats
        ext[lowered:lowered + max(1, period // 2)] = slat_colour * np.float32(0.85)  # bottom rail
    frame = np.float32([236, 236, 232]) if rng.random() < 0.7 else np.float32([92, 92, 96])
    _soft_shadow(img, y0, y1, x0, x1, dy=int(0.008 * s), dx=int(0.008 * s) * (1 if light_from_left else -1),
                 blur=0.01 * s, strength=0.25)
    _fill(img, y0, y1, x0, x1, frame)
    # Frame bevels: lit on the inner edge facing the room light, darker on the sill side.
    _scale_region(img, y0, y0 + max(1, fw // 3), x0, x1, 1.05)
    _scale_region(img, y1 - max(1, fw // 3), y1, x0, x1, 0.86)
    _paste(img, ext, y0 + fw, x0 + fw)
    if rng.random() < 0.6:   # a mullion splits the panes
        mx = x0 + fw + gw // 2 - fw // 2
        _fill(img, y0, y1, mx, mx + fw, frame)
        _scale_region(img, y0, y1, mx + fw - max(1, fw // 3), mx + fw, 0.85)
    # The glass sits in a reveal: a shadowed strip just inside the frame at the top.
    _scale_region(img, y0 + fw, y0 + fw + max(1, fw // 2), x0 + fw, x1 - fw, 0.9)
    # Sill.
    sh = max(2, int(s * 0.02))
    _fill(img, y1, y1 + sh, x0 - fw, x1 + fw, frame * np.float32(1.02))
    _scale_region(img, y1 + sh - 1, y1 + sh, x0 - fw, x1 + fw, 0.75)
    _soft_shadow(img, y1 + sh - 1, y1 + sh, x0 - fw, x1 + fw, dy=int(0.006 * s), dx=0,
                 blur=0.006 * s, strength=0.3)


def _picture(img: np.ndarray, x0: int, x1: int, y0: int, y1: int, s: int, rng: np.random.Generator,
             shadow_dx: int) -> None:
    """A framed print: frame moulding, a white mat, and a soft landscape or abstract inside."""
    if x1 - x0 < 8 or y1 - y0 < 8:
        return
    fw = max(2, int(s * rng.uniform(0.008, 0.016)))
    frame = (np.float32([32, 30, 30]) if rng.random() < 0.4 else
             np.float32([236, 234, 228]) if rng.random() < 0.3 else
             _jitter_colour(_WOODS[rng.integers(len(_WOODS))], rng, bright=0.08, tint=0.03))
    _soft_shadow(img, y0, y1, x0, x1, dy=int(0.012 * s), dx=shadow_dx, blur=0.01 * s, strength=0.35)
    _fill(img, y0, y1, x0, x1, frame)
    _scale_region(img, y0, y0 + max(1, fw // 3), x0, x1, 1.15)
    _scale_region(img, y1 - max(1, fw // 3), y1, x0, x1, 0.8)
    mat = max(1, int(min(x1 - x0, y1 - y0) * rng.uniform(0.08, 0.16)))
    _fill(img, y0 + fw, y1 - fw, x0 + fw, x1 - fw, np.float32([238, 236, 230]))
    _scale_region(img, y0 + fw, y0 + fw + max(1, fw // 2), x0 + fw, x1 - fw, 0.88)
    ax0, ax1, ay0, ay1 = x0 + fw + mat, x1 - fw - mat, y0 + fw + mat, y1 - fw - mat
    if ax1 - ax0 < 3 or ay1 - ay0 < 3:
        return
    ah, aw = ay1 - ay0, ax1 - ax0
    lh, lw = max(4, ah // 4), max(4, aw // 4)
    yy = np.linspace(0, 1, lh, dtype=np.float32)[:, None, None]
    if rng.random() < 0.55:  # landscape: sky, hills, foreground
        sky_top = _jitter_colour((150, 180, 205), rng, bright=0.1, tint=0.08)
        art = np.broadcast_to(sky_top * (1 - 0.3 * yy) + np.float32(60) * yy, (lh, lw, 3)).copy()
        for k, base in enumerate(((110, 130, 120), (90, 120, 70), (130, 120, 70))):
            level = (0.45 + 0.17 * k + 0.06 * np.sin(np.linspace(0, rng.uniform(2, 6), lw) + rng.uniform(0, 6))) * lh
            rows = np.arange(lh)[:, None] >= level[None, :]
            art[rows] = _jitter_colour(base, rng, bright=0.15, tint=0.1)
    else:                    # abstract colour fields
        art = np.broadcast_to(_jitter_colour((220, 210, 190), rng, bright=0.1, tint=0.1), (lh, lw, 3)).copy()
        for _ in range(int(rng.integers(2, 5))):
            c = _BOOK_COLOURS[rng.integers(len(_BOOK_COLOURS))] * np.float32(1.15)
            ya, xa = int(rng.uniform(0, 0.7) * lh), int(rng.uniform(0, 0.7) * lw)
            cv2.rectangle(art, (xa, ya), (xa + int(rng.uniform(0.2, 0.6) * lw),
                                          ya + int(rng.uniform(0.15, 0.5) * lh)), c.tolist(), -1)
    art = cv2.GaussianBlur(art, (0, 0), 0.9)
    _paste(img, cv2.resize(np.clip(art, 0, 255), (aw, ah), interpolation=cv2.INTER_CUBIC), ay0, ax0)
    # Glazing: a faint diagonal sheen.
    gy = np.linspace(0, 1, ah, dtype=np.float32)[:, None]
    gx = np.linspace(0, 1, aw, dtype=np.float32)[None, :]
    _scale_region(img, ay0, ay1, ax0, ax1, (1.0 + 0.06 * np.exp(-((gx + gy - 0.7) ** 2) / 0.02))[..., None])


# --------------------------------------------------------------------------- public API


def register_scene(name: str, maker: Callable[[int, int, np.random.Generator], np.ndarray]) -> None:
    """Add a generated scene (``maker(height, width, rng)`` → uint8 RGB) under one of ``SCENES``."""
    if name not in SCENES:
        raise ValueError(f"scene {name!r} is not one of the documented SCENES ({', '.join(SCENES)})")
    _MAKERS[name] = maker


def _plain(colour) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    def make(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        c = colour if colour is not None else _PLAIN_DRAW[int(rng.integers(len(_PLAIN_DRAW)))]
        return _finish(_wall(h, w, c, rng), rng)
    return make


_MAKERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "plain": _plain(None),
    **{f"plain-{name}": _plain(colour) for name, colour in WALL_PAINTS.items()},
}
# "bookshelf" and "office" are rooms rendered through a camera: rooms.py builds them from this
# module's materials and adds them here (register_scene) when the package is imported.

SCENES: tuple[str, ...] = ("plain", "plain-white", "plain-grey", "plain-blue", "plain-green",
                           "plain-beige", "bookshelf", "office")


def _check_size(height: int, width: int) -> tuple[int, int]:
    for arg, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    return int(height), int(width)


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def make_scene(name: str, height: int, width: int, *, rng: np.random.Generator) -> np.ndarray:
    """A generated background, uint8 [height, width, 3] RGB, filling the whole frame. The same
    (name, size, rng state) gives the same pixels. ``name`` is one of ``SCENES``."""
    if not isinstance(name, str) or name not in SCENES:
        raise KeyError(f"unknown scene {name!r} (available: {', '.join(SCENES)})")
    maker = _MAKERS[name]
    height, width = _check_size(height, width)
    _check_rng(rng)
    out = maker(height, width, rng)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
    return out


def load_user_scenes(folder) -> list[Path]:
    """The image files (``IMAGE_SUFFIXES``, any case) directly in ``folder``, sorted by name."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"scene folder {str(path)!r} does not exist or is not a folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"scene folder {str(path)!r} holds no images "
                         f"(looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def user_scene(path, height: int, width: int) -> np.ndarray:
    """A user's background image as uint8 [height, width, 3] RGB: scaled to cover the frame and
    centre-cropped, never stretched."""
    height, width = _check_size(height, width)
    path = Path(path).expanduser()
    try:
        # imdecode from bytes rather than imread: imread cannot open non-ASCII paths on Windows.
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"cannot read scene image {str(path)!r}: {exc}") from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ValueError(f"cannot read scene image {str(path)!r}: not a readable image")
    ih, iw = bgr.shape[:2]
    scale = max(height / ih, width / iw)
    nh, nw = max(height, math.ceil(ih * scale - 1e-6)), max(width, math.ceil(iw * scale - 1e-6))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(bgr, (nw, nh), interpolation=interp)
    y0, x0 = (nh - height) // 2, (nw - width) // 2
    crop = resized[y0:y0 + height, x0:x0 + width]
    return np.ascontiguousarray(crop[..., ::-1])
