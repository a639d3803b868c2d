"""Rooms seen through a camera: the photographic office and bookshelf backgrounds.

A flat drawing of a room reads as an illustration however good its textures: nothing recedes,
the light is the same everywhere, corners are as bright as the middle of a wall. These scenes are
rendered instead. A pinhole camera (a webcam's field of view, at sitting height, turned a little
to one side) looks into a box of a room; every pixel's ray is cast against the walls, the floor,
the ceiling and the furniture (axis-aligned boxes), and what it hits is shaded:

- **textures** in metres (painted walls with roller stipple and a skirting board, a wooden or
  carpeted floor, the bookshelf's books and wood grain from :mod:`scenes`), so perspective
  shrinks and converges them;
- **light** from a window (an area light, sampled at a few points, with soft shadows cast by the
  furniture) and from a ceiling lamp, plus ambient light darkened in corners, along the edges of
  the room and under and beside furniture (ambient occlusion), so a corner is darker than the
  middle of a wall and a shelf stands in its own shadow;
- the **camera**: auto-exposure, a little depth of field (further is softer), sensor noise.

Everything random comes from the ``rng``; rendering runs at half resolution (the scene is
blurred to the clip's depth of field later anyway) on the CPU with numpy and OpenCV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

ROOM_HEIGHT = 2.6
FLOOR, CEILING, BACK, LEFT, RIGHT = range(5)


@dataclass
class Box:
    """An axis-aligned box (metres) with one texture on its front face (towards the camera,
    -z) and a plain colour on the others."""

    lo: np.ndarray
    hi: np.ndarray
    front: np.ndarray            # texture [h, w, 3] float (0-255 albedo) over the front face
    side: np.ndarray             # albedo of the other faces (RGB 0-255)
    top: np.ndarray | None = None  # texture of the top face, or None for ``side``
    emissive: bool = False


@dataclass
class Room:
    width: float
    depth: float
    textures: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)  # plane → (texture, px/m)
    boxes: list[Box] = field(default_factory=list)
    window: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None   # centre, u, v half-axes (metres)
    emission: dict[int, np.ndarray] = field(default_factory=dict)    # plane → emission mask like texture


def _noise(h: int, w: int, rng: np.random.Generator, cells: tuple[int, int]) -> np.ndarray:
    small = rng.standard_normal((max(2, cells[0]), max(2, cells[1]))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def paint(h: int, w: int, colour, rng: np.random.Generator) -> np.ndarray:
    """A painted surface: flat colour, roller stipple, faint blotches."""
    c = np.asarray(colour, np.float32) * (1 + rng.uniform(-0.02, 0.02, 3)).astype(np.float32)
    shade = 1 + 0.012 * _noise(h, w, rng, (h // 2, w // 2)) + 0.015 * _noise(h, w, rng, (3, 4))
    return shade[..., None] * c


def planks(h: int, w: int, ppm: float, rng: np.random.Generator) -> np.ndarray:
    """A wooden floor seen from above: planks along x, ~14 cm wide, staggered joints."""
    from .scenes import _WOODS, _jitter_colour, _wood

    base = _jitter_colour(_WOODS[rng.integers(len(_WOODS))], rng, bright=0.1, tint=0.05)
    out = np.zeros((h, w, 3), np.float32)
    pw = max(2, int(0.14 * ppm))
    for y in range(0, h, pw):
        rows = min(pw, h - y)
        strip = _wood(w, rows, rng, base * np.float32(rng.uniform(0.85, 1.1)), ppm=ppm)
        strip[:1] *= 0.6                               # the gap between planks
        joint = int(rng.uniform(0, 1.2) * ppm)
        while joint < w:
            strip[:, joint:joint + 1] *= 0.65
            joint += int(rng.uniform(0.9, 1.6) * ppm)
        out[y:y + rows] = strip
    return out


def carpet(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    colour = np.float32([[110, 108, 104], [84, 90, 104], [120, 104, 88]][int(rng.integers(3))])
    fibre = 1 + 0.08 * rng.standard_normal((h, w)).astype(np.float32) + 0.03 * _noise(h, w, rng, (8, 8))
    return fibre[..., None] * colour


def _slab(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Ray–box intersection for rays ``o + t d`` (``d`` [N, 3]): entry t (inf on a miss) and the
    axis of the face entered."""
    # A zero component would give 0 * inf: nudge it (the ray is then parallel to within 1e-12).
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)
    inv = 1.0 / d
    t0 = (lo - o) * inv
    t1 = (hi - o) * inv
    tmin = np.minimum(t0, t1)
    tmax = np.maximum(t0, t1)
    enter = tmin.max(1)
    leave = tmax.min(1)
    axis = tmin.argmax(1)
    hit = (enter <= leave) & (enter > 1e-4)
    return np.where(hit, enter, np.inf), axis


def _blocked(p: np.ndarray, target: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """For points ``p`` [N, 3]: is the segment to ``target`` (3,) blocked by a box?"""
    d = target[None, :] - p
    out = np.zeros(len(p), bool)
    for b in boxes:
        t, _ = _slab(p + d * 1e-3, d, b.lo, b.hi)
        out |= t < 1.0
    return out


def _sample(texture: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``texture`` [h, w, C] at pixel coordinates (s across, t down)."""
    n = len(s)
    cols = 1024  # remap's maps must stay below 32767 on a side
    rows = -(-n // cols)
    mx = np.zeros(rows * cols, np.float32)
    my = np.zeros(rows * cols, np.float32)
    mx[:n], my[:n] = s, t
    out = cv2.remap(np.ascontiguousarray(texture), mx.reshape(rows, cols), my.reshape(rows, cols),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(rows * cols, -1)[:n]


def render(room: Room, h: int, w: int, rng: np.random.Generator, *, camera: dict) -> np.ndarray:
    """The room as the camera sees it: float32 [h, w, 3], sRGB-like 0-255 (before the camera's
    blur and noise, which :func:`scenes._finish` adds)."""
    hh, hw = max(8, h // 2), max(8, w // 2)
    f = (hw / 2) / math.tan(math.radians(camera["hfov"]) / 2)
    ys, xs = np.mgrid[0:hh, 0:hw].astype(np.float64)
    d = np.stack([(xs + 0.5 - hw / 2) / f, -(ys + 0.5 - hh / 2) / f, np.ones_like(xs)], -1).reshape(-1, 3)
    yaw, pitch = camera["yaw"], camera["pitch"]
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    d = d @ np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]]).T
    d = d @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]).T
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = np.array([camera["x"], camera["height"], 0.0])
    n_px = len(d)
    half = room.width / 2
    # Room planes: t along the ray for each, keep hits inside the room's bounds.
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.stack([(0 - o[1]) / d[:, 1], (ROOM_HEIGHT - o[1]) / d[:, 1], (room.depth - o[2]) / d[:, 2],
                       (-half - o[0]) / d[:, 0], (half - o[0]) / d[:, 0]], 1)
    tp = np.where(np.isfinite(tp) & (tp > 1e-4), tp, np.inf)
    pts = o[None, None, :] + tp[..., None] * d[:, None, :]
    eps = 1e-6
    inside = ((pts[..., 0] >= -half - eps) & (pts[..., 0] <= half + eps) & (pts[..., 1] >= -eps)
              & (pts[..., 1] <= ROOM_HEIGHT + eps) & (pts[..., 2] >= -eps) & (pts[..., 2] <= room.depth + eps))
    tp = np.where(inside, tp, np.inf)
    plane = tp.argmin(1)
    t_hit = tp.min(1)
    surface = plane.copy()
    normal = np.array([[0, 1, 0], [0, -1, 0], [0, 0, -1], [1, 0, 0], [-1, 0, 0]], np.float64)[plane]
    for k, b in enumerate(room.boxes):
        tb, axis = _slab(o[None, :], d, b.lo, b.hi)
        closer = tb < t_hit
        t_hit = np.where(closer, tb, t_hit)
        surface = np.where(closer, 10 + k, surface)
        nrm = np.zeros((n_px, 3))
        nrm[np.arange(n_px), axis] = -np.sign(d[np.arange(n_px), axis])
        normal = np.where(closer[:, None], nrm, normal)
    p = o[None, :] + t_hit[:, None] * d
    albedo = np.zeros((n_px, 3), np.float32)
    emit = np.zeros(n_px, np.float32)
    # Texture coordinates per surface, in metres, then the texture's pixels per metre.
    for k in range(5):
        sel = surface == k
        if not sel.any() or k not in room.textures:
            continue
        tex, ppm = room.textures[k]
        q = p[sel]
        if k in (FLOOR, CEILING):
            s_, t_ = q[:, 0] + half, q[:, 2]
        elif k == BACK:
            s_, t_ = q[:, 0] + half, ROOM_HEIGHT - q[:, 1]
        elif k == LEFT:
            s_, t_ = q[:, 2], ROOM_HEIGHT - q[:, 1]
        else:
            s_, t_ = room.depth - q[:, 2], ROOM_HEIGHT - q[:, 1]
        albedo[sel] = _sample(tex, s_ * ppm, t_ * ppm)
        if k in room.emission:
            emit[sel] = _sample(room.emission[k][..., None], s_ * ppm, t_ * ppm)[:, 0]
    for k, b in enumerate(room.boxes):
        sel = surface == 10 + k
        if not sel.any():
            continue
        q, nrm = p[sel], normal[sel]
        front = nrm[:, 2] < -0.5
        topf = nrm[:, 1] > 0.5
        col = np.broadcast_to(b.side.astype(np.float32), (len(q), 3)).copy()
        if front.any():
            fh, fw = b.front.shape[:2]
            s_ = (q[front, 0] - b.lo[0]) / (b.hi[0] - b.lo[0]) * (fw - 1)
            t_ = (b.hi[1] - q[front, 1]) / (b.hi[1] - b.lo[1]) * (fh - 1)
            col[front] = _sample(b.front, s_, t_)
        if topf.any() and b.top is not None:
            th, tw = b.top.shape[:2]
            s_ = (q[topf, 0] - b.lo[0]) / (b.hi[0] - b.lo[0]) * (tw - 1)
            t_ = (q[topf, 2] - b.lo[2]) / (b.hi[2] - b.lo[2]) * (th - 1)
            col[topf] = _sample(b.top, s_, t_)
        albedo[sel] = col
        if b.emissive:
            emit[sel] = 1.0
    irr = _light(room, p, normal, surface, rng, (hh, hw))
    lin = (albedo / 255.0) ** 2.2 * irr[:, None]
    lin = lin * (1 - emit[:, None]) + emit[:, None] * (albedo / 255.0) ** 2.2 * 2.2
    # Auto-exposure as a webcam meters: the frame's mean towards mid-grey, without clipping
    # the brightest walls (the window may clip).
    lum = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    wall = lum[emit < 0.5] if (emit < 0.5).any() else lum
    gain = min(0.22 / max(float(wall.mean()), 1e-4), 0.85 / max(float(np.percentile(wall, 90)), 1e-4))
    lin = lin * gain
    img = np.clip(lin, 0, 1) ** (1 / 2.2) * 255.0
    img = img.reshape(hh, hw, 3).astype(np.float32)
    depth = t_hit.reshape(hh, hw).astype(np.float32)
    # Depth of field, focused on the person about a metre away: further is softer.
    soft = cv2.GaussianBlur(img, (0, 0), 1.1)
    k = np.clip((1.0 - 1.0 / np.maximum(depth, 1.0)) * camera["aperture"], 0, 1)[..., None]
    img = img * (1 - k) + soft * k
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def _shadows(p: np.ndarray, shape: tuple[int, int], target: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Whether each point (an image ``shape`` of them) sees ``target``, tested on every other
    point in both directions and spread back: shadows from area lights are soft anyway, and this
    is most of a room's rendering time."""
    hh, hw = shape
    grid = p.reshape(hh, hw, 3)[::2, ::2].reshape(-1, 3)
    seen = (~_blocked(grid, target, boxes)).astype(np.float32).reshape((hh + 1) // 2, (hw + 1) // 2)
    return cv2.resize(seen, (hw, hh), interpolation=cv2.INTER_LINEAR).reshape(-1)


def _light(room: Room, p: np.ndarray, n: np.ndarray, surface: np.ndarray, rng: np.random.Generator,
           shape: tuple[int, int]) -> np.ndarray:
    """Irradiance at points ``p`` with normals ``n``: window (area light, soft shadows), ceiling
    lamp, and ambient light with occlusion near edges and furniture."""
    half = room.width / 2
    irr = np.zeros(len(p))
    if room.window is not None:
        c, u, v = room.window
        wn = np.cross(u, v)
        wn = wn / np.linalg.norm(wn)
        if np.dot(wn, np.array([0.0, 1.3, room.depth / 2]) - c) < 0:
            wn = -wn
        samples = [c + a * u + b * v for a in (-0.5, 0.5) for b in (-0.5, 0.5)]
        area = 4 * np.linalg.norm(u) * np.linalg.norm(v)
        for s in samples:
            lvec = s[None, :] - p
            r2 = (lvec ** 2).sum(1)
            lv = lvec / np.sqrt(r2)[:, None]
            cos_p = np.clip((n * lv).sum(1), 0, None)
            cos_w = np.clip(-(lv @ wn), 0, None)
            lit = _shadows(p, shape, s, room.boxes)
            irr += 1.6 * cos_p * cos_w / np.maximum(r2, 0.05) * area / len(samples) * lit
    lamp = np.array([0.0, ROOM_HEIGHT - 0.1, room.depth * 0.45])
    lvec = lamp[None, :] - p
    r2 = (lvec ** 2).sum(1)
    lv = lvec / np.sqrt(r2)[:, None]
    cone = np.clip(-lv[:, 1], 0, None) ** 0.5
    lit = _shadows(p, shape, lamp, room.boxes)
    irr += 1.1 * np.clip((n * lv).sum(1), 0, None) * cone / np.maximum(r2, 0.2) * lit
    # Ambient, darker into the room's edges and corners and round the furniture.
    ao = np.ones(len(p))
    for dist in (p[:, 1], ROOM_HEIGHT - p[:, 1], room.depth - p[:, 2], p[:, 0] + half, half - p[:, 0]):
        ao *= 1 - 0.45 * np.exp(-np.clip(dist, 0, None) / 0.22) * (dist > 1e-3)
    for b in room.boxes:
        gap = np.maximum(np.maximum(b.lo - p, p - b.hi), 0)
        dist = np.sqrt((gap ** 2).sum(1))
        ao *= 1 - 0.5 * np.exp(-dist / 0.12) * (dist > 1e-3)
    return irr + 0.32 * ao


def _camera(rng: np.random.Generator, room_width: float) -> dict:
    return {"hfov": rng.uniform(56, 68), "yaw": math.radians(rng.uniform(10, 24)) * rng.choice([-1, 1]),
            "pitch": math.radians(rng.uniform(-4, 3)), "height": rng.uniform(1.15, 1.35),
            "x": rng.uniform(-0.15, 0.15) * room_width, "aperture": rng.uniform(0.6, 1.0)}


def _walls(room: Room, rng: np.random.Generator, ppm: float, colour) -> None:
    from .scenes import _skirting

    wall_w = int(max(room.width, room.depth) * ppm) + 2
    wall_h = int(ROOM_HEIGHT * ppm) + 2
    wall = paint(wall_h, wall_w, colour, rng)
    if rng.random() < 0.7:
        _skirting(wall, rng, np.asarray(colour, np.float32))
    for k in (BACK, LEFT, RIGHT):
        room.textures[k] = (wall, ppm)
    room.textures[CEILING] = (paint(int(room.depth * ppm) + 2, int(room.width * ppm) + 2, (236, 236, 232), rng), ppm)
    fw, fd = int(room.width * ppm) + 2, int(room.depth * ppm) + 2
    room.textures[FLOOR] = (planks(fd, fw, ppm, rng) if rng.random() < 0.65 else carpet(fd, fw, rng), ppm)


def office(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An office or study: a window on a side wall, a bookshelf unit and a desk or sideboard
    against the back wall, a picture above, the door in the other side wall."""
    from .scenes import _PLAIN_DRAW, _WOODS, _jitter_colour, _picture, _render_shelf, _window, _wood

    room = Room(width=rng.uniform(3.4, 4.6), depth=rng.uniform(2.6, 3.6))
    ppm = 160.0
    colour = _PLAIN_DRAW[int(rng.integers(len(_PLAIN_DRAW)))]
    _walls(room, rng, ppm, colour)
    cam = _camera(rng, room.width)
    half = room.width / 2
    # The window on the side wall the camera turns towards: in view, lighting the room across.
    side = RIGHT if cam["yaw"] > 0 else LEFT
    wall_tex, _ = room.textures[side]
    wall_tex = wall_tex.copy()
    emission = np.zeros(wall_tex.shape[:2], np.float32)
    wz0, wz1 = rng.uniform(0.7, 1.1), room.depth - rng.uniform(0.25, 0.5)
    wy0, wy1 = rng.uniform(0.8, 0.95), rng.uniform(2.15, 2.35)
    s_of = (lambda z: z) if side == LEFT else (lambda z: room.depth - z)
    xa, xb = sorted((int(s_of(wz0) * ppm), int(s_of(wz1) * ppm)))
    ya, yb = int((ROOM_HEIGHT - wy1) * ppm), int((ROOM_HEIGHT - wy0) * ppm)
    _window(wall_tex, xa, xb, ya, yb, int(ROOM_HEIGHT * ppm / 2.1), rng, light_from_left=side == LEFT)
    fw = max(2, int(0.05 * ppm))
    emission[ya + fw:yb - fw, xa + fw:xb - fw] = 1.0
    room.textures[side] = (wall_tex, ppm)
    room.emission[side] = cv2.GaussianBlur(emission, (0, 0), 2.0)
    wx = -half + 0.01 if side == LEFT else half - 0.01
    room.window = (np.array([wx, (wy0 + wy1) / 2, (wz0 + wz1) / 2]), np.array([0, 0, (wz1 - wz0) / 2]),
                   np.array([0, (wy1 - wy0) / 2, 0]))
    wood = _jitter_colour(_WOODS[rng.integers(len(_WOODS))], rng, bright=0.08, tint=0.03)
    # A sideboard or desk against the back wall where the camera looks (behind the person),
    # a bookshelf unit beside it on the side away from the window, a picture above.
    toward = 1.0 if side == RIGHT else -1.0
    look_x = cam["x"] + room.depth * math.tan(abs(cam["yaw"])) * toward
    dw, dh, dd = rng.uniform(1.1, 1.5), rng.uniform(0.72, 0.8), rng.uniform(0.45, 0.65)
    dx = float(np.clip(look_x - dw / 2 + rng.uniform(-0.5, 0.3) * toward, -half + 0.05, half - dw - 0.05))
    sw, sh, sd = rng.uniform(0.8, 1.1), rng.uniform(1.8, 2.1), 0.33
    sx = dx - sw - rng.uniform(0.1, 0.4) if side == RIGHT else dx + dw + rng.uniform(0.1, 0.4)
    sx = float(np.clip(sx, -half + 0.01, half - sw - 0.01))
    front = _render_shelf(int(sh * ppm), int(sw * ppm), rng, framed=True)
    room.boxes.append(Box(np.array([sx, 0.0, room.depth - sd]), np.array([sx + sw, sh, room.depth - 0.01]),
                          front, wood * np.float32(0.9), top=_wood(int(sw * ppm), int(sd * ppm), rng, wood, ppm=ppm)))
    if dx + dw <= sx or dx >= sx + sw:
        desk_colour = wood if rng.random() < 0.5 else np.float32([218, 216, 210])
        face = np.broadcast_to(desk_colour * np.float32(0.92), (int(dh * ppm), int(dw * ppm), 3)).copy()
        # Doors or drawers: dark seams and handles on the front.
        n_doors = int(rng.integers(2, 4))
        for k in range(1, n_doors):
            face[:, int(k * face.shape[1] / n_doors)] *= 0.55
        for k in range(n_doors):
            hx = int((k + 0.5) * face.shape[1] / n_doors)
            face[int(0.15 * face.shape[0]):int(0.15 * face.shape[0]) + 3, hx - 8:hx + 8] *= 0.5
        face[:3] *= 1.15
        room.boxes.append(Box(np.array([dx, 0.0, room.depth - dd]), np.array([dx + dw, dh, room.depth - 0.01]),
                              face, desk_colour * np.float32(0.9),
                              top=_wood(int(dw * ppm), int(dd * ppm), rng, desk_colour, ppm=ppm)))
        # A picture above it.
        pw, ph = rng.uniform(0.45, 0.8), rng.uniform(0.35, 0.6)
        px = dx + dw / 2 - pw / 2 + rng.uniform(-0.1, 0.1)
        art = np.broadcast_to(np.float32(colour), (int((ph + 0.1) * ppm), int((pw + 0.1) * ppm), 3)).copy()
        _picture(art, 0, art.shape[1], 0, art.shape[0], int(ROOM_HEIGHT * ppm / 2.1), rng, 0)
        py = rng.uniform(1.35, 1.55)
        room.boxes.append(Box(np.array([px, py, room.depth - 0.035]), np.array([px + pw, py + ph, room.depth - 0.01]),
                              art, np.float32([40, 40, 40])))
    return render(room, h, w, rng, camera=cam)


def shelves(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A wall of built-in bookshelves behind the person, seen at an angle: the shelves run past
    the frame on both sides, the ceiling or the floor at the frame's edges where they show."""
    from .scenes import _PLAIN_DRAW, _render_shelf

    room = Room(width=rng.uniform(3.2, 4.2), depth=rng.uniform(2.1, 2.9))
    ppm = 150.0
    _walls(room, rng, ppm, _PLAIN_DRAW[int(rng.integers(len(_PLAIN_DRAW)))])
    cam = _camera(rng, room.width)
    cam["yaw"] *= 0.7
    half = room.width / 2
    top = rng.uniform(2.2, 2.5)
    depth = 0.34
    front = _render_shelf(int(top * ppm), int(room.width * ppm), rng, framed=False, pitch=rng.uniform(0.3, 0.36) * ppm)
    room.boxes.append(Box(np.array([-half, 0.0, room.depth - depth]), np.array([half, top, room.depth]),
                          front, np.float32([120, 90, 60])))
    # Daylight from a window behind the camera and to one side.
    wx = rng.choice([-1, 1]) * half * 0.9
    room.window = (np.array([wx, 1.6, 0.05]), np.array([0.5, 0, 0]), np.array([0, 0.6, 0]))
    return render(room, h, w, rng, camera=cam)


def _register() -> None:
    from .scenes import _finish, register_scene

    register_scene("office", lambda h, w, rng: _finish(office(h, w, rng), rng))
    register_scene("bookshelf", lambda h, w, rng: _finish(shelves(h, w, rng), rng, noise=1.8))


_register()
