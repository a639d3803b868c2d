"""Backgrounds for background-swap edits: generated rooms and the user's own images.

The generated scenes have to pass for the real thing to a person looking at the edited clip —
the newsroom experiment this product automates put a real bookshelf behind a real actress — so
they are built the way a webcam sees a room: a painted wall is never a flat fill (light falls
off, the paint has a texture, the sensor adds noise), a bookshelf has wood grain, shadows under
its shelves, books of many sizes and colours, some leaning, some gaps. Every scene fills the
whole frame because it is composited behind a person mask.

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


def _render_shelf(h: int, w: int, rng: np.random.Generator, *, framed: bool) -> np.ndarray:
    """A bookshelf [h, w, 3] float32. ``framed``: a whole unit (top, side panels, plinth);
    otherwise a close view of a wall of shelves that runs past every edge of the frame."""
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
        pitch = h / rng.uniform(2.8, 3.5)
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


# --------------------------------------------------------------------------- office


def _office(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A room corner a webcam sees behind a desk: a painted wall with a window (bright, out of
    focus, maybe blinds) at one side and a door at the other, furniture against the wall, and a
    picture, whiteboard or clock above it, lit from the window side."""
    wall_colour = _PLAIN_DRAW[int(rng.integers(len(_PLAIN_DRAW)))]
    img = _wall(h, w, wall_colour, rng, skirting=0.0)
    s = h
    # Everything is placed in metres: the frame shows the wall from ~0.2 m to ~2.3 m above the
    # floor, so a door is a door-sized fraction of the frame at any aspect ratio.
    ppm = h / 2.1

    def yf(metres: float) -> int:
        return int(round((2.3 - metres) * ppm))

    window_left = rng.random() < 0.5
    sign = 1 if window_left else -1
    shadow_dx = int(round(0.012 * s)) * sign  # shadows fall away from the window

    ww = int(ppm * rng.uniform(0.9, 1.3))
    inset = int(ww * rng.uniform(-0.35, 0.1))  # negative: the window runs past the frame edge
    wx0 = inset if window_left else w - ww - inset
    wx1 = wx0 + ww
    _window(img, wx0, wx1, yf(rng.uniform(2.05, 2.2)), yf(rng.uniform(0.85, 1.0)), s, rng,
            light_from_left=window_left)
    # Daylight spills onto the wall beside the window.
    xx = np.arange(w, dtype=np.float32)
    img *= (1.0 + 0.1 * np.exp(-np.abs(xx - (wx0 + wx1) / 2) / (0.35 * w)))[None, :, None]

    dw = int(ppm * rng.uniform(0.8, 0.9))
    casing = max(3, int(round(0.07 * ppm)))
    gap = int(0.25 * ppm) + casing
    if window_left:
        dx0 = max(w - dw - int(dw * rng.uniform(-0.3, 0.15)), wx1 + gap)
    else:
        dx0 = min(int(dw * rng.uniform(-0.3, 0.15)), wx0 - gap - dw)
    if min(dx0 + dw, w) - max(dx0, 0) > 0.4 * dw:
        _door(img, dx0, dx0 + dw, yf(2.05), h, casing, s, rng, light_from_left=window_left)
    else:
        # A narrow (portrait) frame has no room for a door: a sliver of door frame at the edge
        # reads as an artefact, so the wall runs on to the edge instead.
        dx0 = w + casing if window_left else -dw - casing

    # Furniture and wall decoration share the wall between window and door.
    span0, span1 = (max(wx1, 0), min(dx0 - casing, w)) if window_left else (max(dx0 + dw + casing, 0), min(wx0, w))
    span = span1 - span0
    under_window = span < 0.3 * ppm
    if under_window:
        # No free wall (a narrow frame): a low sideboard under the window instead.
        span0, span1 = max(wx0, 0), min(wx1, w)
        span = span1 - span0
    mid = (span0 + span1) / 2
    furniture = None
    if span >= 0.5 * ppm:
        if under_window or rng.random() < 0.55:
            cab_w = int(min(ppm * rng.uniform(0.8, 1.4), span * rng.uniform(0.6, 0.85)))
            top = yf(rng.uniform(0.72, 0.8))
            kind = "sideboard"
        else:
            cab_w = int(min(ppm * rng.uniform(0.42, 0.5), span * 0.8))
            top = yf(0.72)
            kind = "filing"
        cab_x0 = int(mid - cab_w / 2 + (span - cab_w) * rng.uniform(-0.3, 0.3))
        # A sideboard's top overhangs as a lip above ``top``; the filing cabinet is flush.
        furniture = (cab_x0, cab_x0 + cab_w, top - max(2, int(s * 0.018)) if kind == "sideboard" else top)
        if kind == "sideboard":
            _cabinet(img, cab_x0, cab_x0 + cab_w, top, h, s, rng, shadow_dx)
        else:
            _filing_cabinet(img, cab_x0, cab_x0 + cab_w, top, h, s, rng, shadow_dx)

    if under_window:
        if furniture is not None:
            x0, x1, top = furniture
            pot_w = max(6, int(ppm * rng.uniform(0.13, 0.2)))
            if x1 - x0 > 2.5 * pot_w:
                px = x0 + int(0.08 * (x1 - x0)) if rng.random() < 0.5 else x1 - int(0.08 * (x1 - x0)) - pot_w
                _plant(img, px, px + pot_w, top, s, rng, shadow_dx)
        return img
    r = rng.random()
    item_cx = (mid if furniture is None else (furniture[0] + furniture[1]) / 2) + span * rng.uniform(-0.1, 0.1)
    if r < 0.5 or span < 0.6 * ppm:
        pw = min(span * 0.8, ppm * rng.uniform(0.4, 0.75))
        ph = pw * rng.uniform(0.7, 1.25)
        y1 = yf(rng.uniform(1.2, 1.4))
        _picture(img, int(item_cx - pw / 2), int(item_cx + pw / 2), max(int(0.04 * h), int(y1 - ph)), y1,
                 s, rng, shadow_dx)
    elif r < 0.75:
        bw = min(span * 0.85, ppm * rng.uniform(0.9, 1.3))
        bh = bw * rng.uniform(0.62, 0.75)
        y1 = yf(rng.uniform(1.05, 1.15))
        _whiteboard(img, int(item_cx - bw / 2), int(item_cx + bw / 2), int(y1 - bh), y1, s, rng, shadow_dx)
    else:
        _clock(img, item_cx, yf(rng.uniform(1.75, 1.95)), ppm * rng.uniform(0.14, 0.18), s, rng, shadow_dx)

    if furniture is not None and rng.random() < 0.75:
        # A plant on the furniture, at the end away from the wall item.
        x0, x1, top = furniture
        pot_w = max(6, int(ppm * rng.uniform(0.13, 0.2)))
        if x1 - x0 > 2.5 * pot_w:
            left_end = item_cx > (x0 + x1) / 2
            px = x0 + int(0.08 * (x1 - x0)) if left_end else x1 - int(0.08 * (x1 - x0)) - pot_w
            _plant(img, px, px + pot_w, top, s, rng, shadow_dx)
    return img


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


def _door(img: np.ndarray, x0: int, x1: int, y0: int, y1: int, casing: int, s: int,
          rng: np.random.Generator, *, light_from_left: bool) -> None:
    """A panelled door in a moulded casing (painted white or wood veneer) with a lever handle."""
    white = rng.random() < 0.55
    trim = np.float32([238, 237, 232])
    if white:
        leaf = np.float32([228, 227, 222])
    else:
        leaf = _jitter_colour(_WOODS[rng.integers(len(_WOODS))], rng, bright=0.08, tint=0.03)
    dx = int(0.01 * s) * (1 if light_from_left else -1)
    _soft_shadow(img, y0 - casing, y1, x0 - casing, x1 + casing, dy=int(0.006 * s), dx=dx,
                 blur=0.01 * s, strength=0.22)
    _fill(img, y0 - casing, y1, x0 - casing, x1 + casing, trim)
    # Casing moulding: a lit and a shaded edge.
    for xa, xb in ((x0 - casing, x0), (x1, x1 + casing)):
        _scale_region(img, y0 - casing, y1, xa, xa + max(1, casing // 4), 1.04)
        _scale_region(img, y0 - casing, y1, xb - max(1, casing // 4), xb, 0.86)
    if white:
        _fill(img, y0, y1, x0, x1, leaf)
    else:
        # Door leaves are veneered with the grain running up.
        _paste(img, np.ascontiguousarray(_wood(y1 - y0, x1 - x0, rng, leaf, ppm=s / 2.1).transpose(1, 0, 2)), y0, x0)
    # The leaf sits behind the casing: a shadow line along its top and hinge side.
    _scale_region(img, y0, y0 + max(1, casing // 3), x0, x1, 0.8)
    # Raised panels: a light and a dark bevel around each recessed rectangle.
    dw, dh = x1 - x0, y1 - y0
    m = max(3, int(dw * 0.14))
    for py0, py1 in ((y0 + m, y0 + int(dh * 0.42)), (y0 + int(dh * 0.42) + m, y1 + m)):
        b = max(1, int(s * 0.006))
        _scale_region(img, py0, py0 + b, x0 + m, x1 - m, 0.85)
        _scale_region(img, py0, py1, x0 + m, x0 + m + b, 0.88)
        _scale_region(img, py1 - b, py1, x0 + m, x1 - m, 1.06)
        _scale_region(img, py0, py1, x1 - m - b, x1 - m, 1.05)
    # Lever handle on the side away from the hinge, at ~1 m.
    hx = x0 + int(dw * 0.1) if light_from_left else x1 - int(dw * 0.1)
    hy = int(round((2.3 - 1.0) / 2.1 * img.shape[0]))
    r = max(2, int(s * 0.012))
    metal = np.float32([170, 168, 162])
    lever = max(4, int(dw * 0.22))
    lx0, lx1 = (hx, hx + lever) if light_from_left else (hx - lever, hx)
    _soft_shadow(img, hy - r // 2, hy + r // 2 + 1, lx0, lx1, dy=int(0.006 * s), dx=dx, blur=0.004 * s,
                 strength=0.35)
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    rose = np.stack([hx + r * np.cos(ang), hy + r * np.sin(ang)], 1)
    bar = np.float64([[lx0, hy - r // 2], [lx1, hy - r // 2], [lx1, hy + r // 2 + 1], [lx0, hy + r // 2 + 1]])
    _fill_poly_aa(img, [rose, bar], metal)
    _scale_region(img, hy - r // 2, hy - r // 2 + 1, lx0, lx1, 1.2)


def _cabinet(img: np.ndarray, x0: int, x1: int, top: int, bottom: int, s: int,
             rng: np.random.Generator, shadow_dx: int) -> None:
    """A low sideboard against the wall: a top with a lit front lip, drawer fronts with handles."""
    wood = rng.random() < 0.6
    colour = (_jitter_colour(_WOODS[rng.integers(len(_WOODS))], rng, bright=0.08, tint=0.03) if wood
              else np.float32([214, 212, 206]) if rng.random() < 0.6 else np.float32([74, 76, 80]))
    _soft_shadow(img, top, bottom, x0, x1, dy=int(0.01 * s), dx=shadow_dx, blur=0.015 * s, strength=0.3)
    body = (_wood(x1 - x0, bottom - top, rng, colour * np.float32(0.92), ppm=s / 2.1) if wood else
            np.broadcast_to(colour * np.float32(0.92), (bottom - top, x1 - x0, 3)).copy())
    _paste(img, body, top, x0)
    lip = max(2, int(s * 0.018))
    overhang = max(1, lip // 2)
    _fill(img, top - lip, top, x0 - overhang, x1 + overhang, colour * np.float32(1.05))
    _scale_region(img, top - lip, top - lip + 1, x0 - overhang, x1 + overhang, 1.12)
    _scale_region(img, top, top + max(1, lip // 2), x0, x1, 0.72)  # under the lip
    # Drawer/door split lines and handles.
    n = int(rng.integers(2, 4))
    for i in range(1, n):
        x = x0 + (x1 - x0) * i // n
        _scale_region(img, top, bottom, x, x + 1, 0.6)
    hy = top + int(0.08 * s)
    for i in range(n):
        cx = x0 + (x1 - x0) * (2 * i + 1) // (2 * n)
        hw = max(3, int(0.03 * s))
        _fill(img, hy, hy + max(2, int(0.006 * s)), cx - hw, cx + hw, np.float32([180, 178, 172]))
        _scale_region(img, hy + max(2, int(0.006 * s)), hy + max(3, int(0.01 * s)), cx - hw, cx + hw, 0.75)


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


def _circle(cx: float, cy: float, r: float, n: int = 64) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)


def _bar(x0: float, y0: float, x1: float, y1: float, half: float, half_end: float | None = None) -> np.ndarray:
    """A (possibly tapered) bar from (x0, y0) to (x1, y1) as a polygon."""
    dx, dy = x1 - x0, y1 - y0
    n = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / n, dx / n
    he = half if half_end is None else half_end
    return np.float64([[x0 + nx * half, y0 + ny * half], [x1 + nx * he, y1 + ny * he],
                       [x1 - nx * he, y1 - ny * he], [x0 - nx * half, y0 - ny * half]])


def _clock(img: np.ndarray, cx: float, cy: float, r: float, s: int, rng: np.random.Generator,
           shadow_dx: int) -> None:
    """A round wall clock: rim, white face, hour ticks, two hands showing some working hour."""
    rim = (np.float32([36, 36, 38]) if rng.random() < 0.5 else
           np.float32([200, 200, 198]) if rng.random() < 0.5 else
           _jitter_colour(_WOODS[rng.integers(len(_WOODS))], rng, bright=0.08, tint=0.03))
    shadow = _circle(cx + shadow_dx, cy + 0.012 * s, r * 1.02)
    h, w = img.shape[:2]
    pad = int(0.02 * s) + 2
    x0, x1 = max(0, int(cx - r) - pad + min(0, shadow_dx)), min(w, int(cx + r) + pad + max(0, shadow_dx))
    y0, y1 = max(0, int(cy - r) - pad), min(h, int(cy + r) + pad + int(0.012 * s))
    if x0 >= x1 or y0 >= y1:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [np.round((shadow - (x0, y0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    m = cv2.GaussianBlur(m.astype(np.float32) / 255, (0, 0), max(0.6, 0.008 * s))
    img[y0:y1, x0:x1] *= (1.0 - 0.35 * m)[..., None]
    _fill_poly_aa(img, [_circle(cx, cy, r)], rim)
    _fill_poly_aa(img, [_circle(cx, cy, r * 0.88)], np.float32([240, 238, 232]))
    _fill_poly_aa(img, [_circle(cx, cy, r * 0.88)], np.float32([200, 198, 192]), opacity=0.25)  # glass
    _fill_poly_aa(img, [_circle(cx, cy - r * 0.03, r * 0.84)], np.float32([242, 240, 234]))
    ink = np.float32([30, 30, 32])
    ticks = []
    for k in range(12):
        a = k * np.pi / 6
        inner = 0.66 if k % 3 == 0 else 0.72
        ticks.append(_bar(cx + r * inner * math.sin(a), cy - r * inner * math.cos(a),
                          cx + r * 0.8 * math.sin(a), cy - r * 0.8 * math.cos(a), r * (0.035 if k % 3 == 0 else 0.02)))
    _fill_poly_aa(img, ticks, ink)
    hour, minute = rng.uniform(8, 18), rng.uniform(0, 60)
    ah, am = (hour % 12 + minute / 60) * np.pi / 6, minute * np.pi / 30
    _fill_poly_aa(img, [_bar(cx, cy, cx + r * 0.45 * math.sin(ah), cy - r * 0.45 * math.cos(ah), r * 0.045, r * 0.025),
                        _bar(cx, cy, cx + r * 0.7 * math.sin(am), cy - r * 0.7 * math.cos(am), r * 0.035, r * 0.015),
                        _circle(cx, cy, r * 0.06, 16)], ink)


def _whiteboard(img: np.ndarray, x0: int, x1: int, y0: int, y1: int, s: int,
                rng: np.random.Generator, shadow_dx: int) -> None:
    """A whiteboard: aluminium frame, glossy white surface with the ghosts of old notes and a
    few fresh strokes, a pen tray along the bottom."""
    if x1 - x0 < 10 or y1 - y0 < 8:
        return
    fw = max(2, int(0.01 * s))
    _soft_shadow(img, y0, y1, x0, x1, dy=int(0.01 * s), dx=shadow_dx, blur=0.01 * s, strength=0.3)
    _fill(img, y0, y1, x0, x1, np.float32([196, 198, 200]))
    _scale_region(img, y0, y0 + max(1, fw // 2), x0, x1, 1.12)
    _scale_region(img, y1 - max(1, fw // 2), y1, x0, x1, 0.8)
    bx0, bx1, by0, by1 = x0 + fw, x1 - fw, y0 + fw, y1 - fw
    bh, bw = by1 - by0, bx1 - bx0
    gx = np.linspace(0, 1, bw, dtype=np.float32)[None, :]
    gy = np.linspace(0, 1, bh, dtype=np.float32)[:, None]
    # Gloss: a broad soft reflection of the window.
    gloss = 0.95 + 0.05 * np.exp(-((gx - rng.uniform(0.2, 0.8)) ** 2) / 0.05) - 0.02 * gy
    board = np.float32([244, 245, 246])[None, None, :] * gloss[..., None]
    strokes = np.zeros((bh, bw), np.uint8)
    fresh = np.zeros((bh, bw), np.uint8)
    for k in range(int(rng.integers(4, 10))):
        # A line of handwriting: a wobbly horizontal polyline of short loops.
        y = int(bh * rng.uniform(0.1, 0.85))
        xa = int(bw * rng.uniform(0.05, 0.4))
        xb = int(xa + bw * rng.uniform(0.2, 0.55))
        xs = np.arange(xa, min(xb, bw - 2), max(2, bh // 40))
        if xs.size < 2:
            continue
        ys = y + rng.normal(0, max(1.0, bh * 0.012), xs.size).cumsum() * 0.3 + \
            (rng.random(xs.size) - 0.5) * bh * 0.035
        pts = np.stack([xs, ys], 1).round().astype(np.int32)
        target = fresh if k < 2 else strokes
        cv2.polylines(target, [pts], False, 255, max(1, bh // 120), cv2.LINE_AA)
    ghost = cv2.GaussianBlur(strokes.astype(np.float32) / 255, (0, 0), 1.0) * 0.12
    board *= (1.0 - ghost)[..., None]
    ink = np.float32([40, 60, 150]) if rng.random() < 0.5 else np.float32([40, 40, 44])
    _blend_alpha(board, fresh.astype(np.float32) / 255 * 0.85, ink)
    _paste(img, board, by0, bx0)
    # Pen tray with a couple of markers.
    th = max(2, int(0.015 * s))
    _fill(img, y1, y1 + th, x0 + int(0.2 * (x1 - x0)), x1 - int(0.2 * (x1 - x0)), np.float32([180, 182, 184]))
    _scale_region(img, y1 + th - 1, y1 + th, x0 + int(0.2 * (x1 - x0)), x1 - int(0.2 * (x1 - x0)), 0.7)
    px = x0 + int(0.3 * (x1 - x0))
    for c in ((30, 30, 34), (40, 60, 150), (170, 40, 40))[: int(rng.integers(1, 4))]:
        pl = max(4, int(0.06 * s))
        _fill(img, y1 - max(1, th // 2), y1 + max(1, th // 3), px, px + pl, np.float32(c))
        px += pl + max(2, int(0.02 * s))


def _filing_cabinet(img: np.ndarray, x0: int, x1: int, top: int, bottom: int, s: int,
                    rng: np.random.Generator, shadow_dx: int) -> None:
    """A two-drawer steel filing cabinet: drawer seams, recessed pull handles, label holders."""
    colour = (np.float32([198, 199, 196]) if rng.random() < 0.6 else np.float32([78, 80, 84]))
    _soft_shadow(img, top, bottom, x0, x1, dy=int(0.01 * s), dx=shadow_dx, blur=0.015 * s, strength=0.3)
    cw = x1 - x0
    xx = np.linspace(0, 1, max(1, cw), dtype=np.float32)
    # Brushed, slightly curved front: brighter toward the window side.
    side = 0.92 + 0.08 * (xx if shadow_dx < 0 else 1 - xx)
    _paste(img, np.broadcast_to(colour[None, None, :] * side[None, :, None], (bottom - top, cw, 3)).copy(), top, x0)
    _scale_region(img, top, top + max(1, int(0.004 * s)), x0, x1, 1.15)
    _scale_region(img, top, bottom, x0, x0 + max(1, int(0.004 * s)), 1.08)
    _scale_region(img, top, bottom, x1 - max(1, int(0.004 * s)), x1, 0.8)
    drawer = int(0.34 * s / 2.1)
    for k in range(3):
        seam = top + int(0.02 * s) + k * drawer
        if k:
            _scale_region(img, seam - 1, seam + 1, x0 + 1, x1 - 1, 0.55)
        hy = seam + int(drawer * 0.22)
        hw, hh = max(3, int(cw * 0.16)), max(2, int(0.012 * s))
        cx = (x0 + x1) // 2
        _scale_region(img, hy, hy + hh, cx - hw, cx + hw, 0.45)  # recessed pull
        _scale_region(img, hy + hh, hy + hh + 1, cx - hw, cx + hw, 1.2)
        ly = hy - max(3, int(0.03 * s))
        _fill(img, ly, ly + max(2, int(0.016 * s)), cx - hw // 2, cx + hw // 2, np.float32([232, 230, 222]))
        _scale_region(img, ly, ly + 1, cx - hw // 2, cx + hw // 2, 0.8)


def _plant(img: np.ndarray, x0: int, x1: int, floor: int, s: int, rng: np.random.Generator,
           shadow_dx: int) -> None:
    """A potted plant standing on a surface at ``floor``: a tapered, round-lit pot and a fan of
    pointed leaves in several greens, the darker ones behind."""
    h, w = img.shape[:2]
    pw = x1 - x0
    ph = int(pw * rng.uniform(0.85, 1.15))
    r = rng.random()
    pot = (np.float32([176, 96, 64]) if r < 0.35 else np.float32([226, 224, 218]) if r < 0.75
           else np.float32([60, 62, 66]))
    top_y = floor - ph
    taper = pw * 0.14
    _soft_shadow(img, top_y, floor, x0, x1, dy=int(0.004 * s), dx=shadow_dx, blur=0.01 * s,
                 strength=0.35)
    xx = np.clip((np.arange(w, dtype=np.float32) - x0) / max(pw, 1), 0, 1)
    side = 0.72 + 0.3 * np.abs(np.sin(np.pi * (xx * 0.9 + 0.05))) ** 0.7
    layer = np.broadcast_to(pot[None, None, :] * side[None, :, None], (h, w, 3))
    _fill_poly_aa(img, [np.float64([[x0, top_y], [x1, top_y], [x1 - taper, floor], [x0 + taper, floor]])],
                  layer)
    _scale_region(img, top_y, top_y + max(1, int(ph * 0.1)), x0, x1, 1.08)  # rim
    cx, cy = (x0 + x1) / 2, top_y + 1.0
    n = int(rng.integers(10, 18))
    spread = pw * rng.uniform(1.8, 2.6)
    tall = pw * rng.uniform(1.8, 2.8)
    t = np.linspace(0.0, 1.0, 14)
    leaves = []
    for _ in range(n):
        ang = rng.uniform(-1.2, 1.2)
        length = tall * rng.uniform(0.45, 1.0) * (1.0 - 0.25 * abs(ang))
        dx, dy = math.sin(ang) * spread / tall, -math.cos(ang)
        norm = math.hypot(dx, dy)
        dx, dy = dx / norm, dy / norm
        bend = rng.uniform(0.1, 0.3) * length * (1 if ang > 0 else -1)
        half = length * rng.uniform(0.1, 0.17) * (1.0 if rng.random() < 0.7 else 0.5)
        # Axis droops outward toward the tip; width swells then comes to a point.
        ax = cx + dx * length * t + bend * t ** 2 * abs(dy)
        ay = cy + dy * length * t + abs(bend) * 0.6 * t ** 2
        wdt = half * np.sin(np.pi * np.clip(t, 0, 1)) ** 0.8
        nx, ny = -dy, dx
        poly = np.concatenate([np.stack([ax + nx * wdt, ay + ny * wdt], 1),
                               np.stack([ax - nx * wdt, ay - ny * wdt], 1)[::-1]])
        green = _jitter_colour((58, 106, 50), rng, bright=0.3, tint=0.12)
        leaves.append((float(green.sum()), poly, green, np.stack([ax, ay], 1)))
    leaves.sort(key=lambda leaf: leaf[0])  # darker (further back, in shade) first
    for _, poly, green, axis in leaves:
        _fill_poly_aa(img, [poly], green)
        # Midrib: a thin lighter line along the axis.
        rib = np.concatenate([axis + (0.4, 0), axis[::-1] - (0.4, 0)])
        _fill_poly_aa(img, [rib], np.minimum(green * np.float32(1.35), 255), opacity=0.5)


# --------------------------------------------------------------------------- public API


def _plain(colour) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    def make(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        c = colour if colour is not None else _PLAIN_DRAW[int(rng.integers(len(_PLAIN_DRAW)))]
        return _finish(_wall(h, w, c, rng), rng)
    return make


_MAKERS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "plain": _plain(None),
    **{f"plain-{name}": _plain(colour) for name, colour in WALL_PAINTS.items()},
    "bookshelf": lambda h, w, rng: _finish(_render_shelf(h, w, rng, framed=False), rng, noise=1.8),
    "office": lambda h, w, rng: _finish(_office(h, w, rng), rng),
}

SCENES: tuple[str, ...] = ("plain", "plain-white", "plain-grey", "plain-blue", "plain-green",
                           "plain-beige", "bookshelf", "office")
assert set(SCENES) == set(_MAKERS)


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
    try:
        maker = _MAKERS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown scene {name!r} (available: {', '.join(SCENES)})") from None
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
