"""Clips of other framings, light and skin tones, derived from the two sample portraits, on which
the edits are previewed and tested: a face near the frame edge, a phone's portrait framing, a
small face in a wide shot, a dim warm room, a lamp to one side, a hand raised to the mouth or the
chin, a darker skin tone — and clips that are not one continuous shot of a face: a title card
cut to the person, a fade to black, and a camera that pans until the face has left the frame.

What is synthetic here, said plainly: the light is changed after the fact (a gain, a white
balance, a gradient across the frame, sensor noise), the hands are drawn (a shaded, anti-aliased
hand and forearm in the face's own skin colour, which MediaPipe's hand model finds), and the
darker skin is a recolouring of the portrait's skin in CIELAB (the shading and texture kept, the
tone moved), not a photograph of another person. They exist so that the edits are looked at,
and checked, beyond two well-lit studio portraits; they are not a substitute for real footage.

Written once into the cache (``samples-variants-v<N>``), like the sample set; not part of the
default clip set of ``auditkit run``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auditkit.contract.paths import cache_root

from .samples import (FPS, SECONDS, _face_box, _head_motion, _Variant, built_once, load_portraits, speech,
                      write_metadata)
from .video import write_video

VARIANTS_VERSION = 3  # 2: every clip speaks, as the sample clips do; 3: a cut, a fade, a pan away

# Face-mesh landmarks used to place a hand and to sample the skin (subject's left/right).
_MOUTH_TOP, _MOUTH_BOTTOM, _CHIN, _FOREHEAD = 13, 14, 152, 10
_CHEEKS = (50, 280, 101, 330, 118, 347, 205, 425, 151, 9, 108, 337)
# The face oval in order (MediaPipe's FACEMESH_FACE_OVAL; media does not import the edits).
_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
              148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
_RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)


@dataclass(frozen=True)
class Look:
    """What a variant changes beyond framing. ``centre_x``: where the face centre sits across the
    frame (0.5: centred; the crop is placed so, as far as the portrait allows); ``crop_faces``:
    crop height in face heights; ``light``: "" | "dim-warm" | "side"; ``hand``: "" | "mouth" |
    "chin"; ``skin``: target CIELAB (L, a, b) of the recoloured skin, or None."""

    centre_x: float = 0.5
    crop_faces: float = 2.6
    light: str = ""
    hand: str = ""
    skin: tuple[float, float, float] | None = None
    story: str = ""  # "" | "cut": a title card, then the person | "fade": to black | "leaves": panned away
    notes: dict[str, str] = field(default_factory=dict)


VARIANTS: dict[str, tuple[_Variant, Look]] = {
    "collins_edge": (_Variant("collins", "medium", (320, 240), False, 2.5, 2.0, 2.0, 0.4),
                     Look(centre_x=0.16, crop_faces=2.5)),
    "hopper_phone_edge": (_Variant("hopper", "medium", (240, 320), True, 2.0, 2.0, 1.5, 1.2),
                          Look(centre_x=0.78, crop_faces=1.9)),
    "collins_far": (_Variant("collins", "wide", (288, 288), False, 3.0, 1.5, 2.0, 2.0),
                    Look(crop_faces=4.6)),
    "hopper_dim_warm": (_Variant("hopper", "medium", (320, 240), False, 2.5, 2.5, 2.0, 0.8),
                        Look(crop_faces=2.6, light="dim-warm")),
    "collins_side_light": (_Variant("collins", "tight", (288, 288), True, 2.0, 2.5, 1.5, 2.6),
                           Look(crop_faces=2.0, light="side")),
    "collins_deep_skin": (_Variant("collins", "medium", (384, 216), False, 2.5, 2.0, 2.0, 1.4),
                          Look(crop_faces=2.6, skin=(38.0, 15.0, 23.0))),
    "collins_hand": (_Variant("collins", "medium", (320, 240), False, 2.0, 1.5, 1.0, 0.5),
                     Look(crop_faces=2.6, hand="mouth")),
    "hopper_hand": (_Variant("hopper", "tight", (320, 240), True, 1.5, 1.5, 1.0, 3.3),
                    Look(crop_faces=2.1, hand="chin")),
    # Edited clips that are not one continuous shot of a face: a title card cut to the person, a
    # fade to black, and a camera that pans until the face has left the frame.
    "hopper_title_cut": (_Variant("hopper", "medium", (320, 240), False, 2.0, 2.0, 1.5, 0.6),
                         Look(crop_faces=2.6, story="cut")),
    "collins_fade_out": (_Variant("collins", "medium", (320, 240), False, 2.5, 2.0, 2.0, 1.0),
                         Look(crop_faces=2.6, story="fade")),
    "collins_leaves": (_Variant("collins", "tight", (320, 240), False, 2.0, 1.5, 1.0, 0.2),
                       Look(centre_x=0.5, crop_faces=1.6, story="leaves")),
}
TITLE_SECONDS = 0.6        # the title card before the cut
FADE_FROM, FADE_TO = 1.2, 1.6  # the fade to black, then black to the end
PAN_FROM, PAN_TO = 0.6, 1.3    # the pan that takes the face out of the frame


def _mesh(image: np.ndarray) -> np.ndarray:
    """478 face-mesh landmarks of a portrait, pixel (x, y)."""
    import mediapipe as mp

    from auditkit.contract.quiet import quiet_stderr

    with quiet_stderr(), mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                         refine_landmarks=True) as mesh:
        found = mesh.process(image).multi_face_landmarks
    if not found:
        raise RuntimeError("no face mesh found in a sample portrait")
    h, w = image.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in found[0].landmark], np.float64)


def _polygon_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(cv2.convexHull(points.astype(np.float32))).astype(np.int32)], 1)
    return m.astype(bool)


def recolour_skin(image: np.ndarray, lm: np.ndarray, target: tuple[float, float, float]) -> np.ndarray:
    """The portrait with its skin moved to the CIELAB tone ``target``: the face inside its oval
    (not the eyes) and skin-coloured pixels beyond it; each pixel keeps its offset from the skin
    mean (shading, pores). A synthetic recolouring, not another person."""
    import cv2

    h, w = image.shape[:2]
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    cheeks = np.concatenate([lab[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].reshape(-1, 3)
                             for x, y in lm[list(_CHEEKS)]])
    mean, std = cheeks.mean(0), cheeks.std(0) + (2.0, 1.5, 1.5)
    # Inside the face oval everything but the eyes is skin (brows and lips are recoloured with
    # it: they are darker on a darker face too); outside it (neck, ears) skin is told by chroma.
    d = np.sqrt((((lab[..., 1:] - mean[1:]) / (1.8 * std[1:])) ** 2).sum(-1))
    skin = np.clip(1.5 - d, 0, 1) * np.clip(1.6 - np.abs(lab[..., 0] - mean[0]) / (2.5 * std[0] + 8), 0, 1)
    oval = cv2.GaussianBlur(_polygon_mask((h, w), lm[list(_FACE_OVAL)]).astype(np.float32), (0, 0), 0.01 * w)
    skin = np.maximum(skin, oval)
    for part in (_RIGHT_EYE, _LEFT_EYE):
        eye = cv2.GaussianBlur(_polygon_mask((h, w), lm[list(part)]).astype(np.float32), (0, 0), 1.0)
        skin = skin * (1 - eye)
    skin = cv2.GaussianBlur(skin.astype(np.float32), (0, 0), 1.0)
    tl, ta, tb = target
    out = lab.copy()
    # Shading and pores kept as offsets from the skin mean, lightness range narrowed in
    # proportion (a darker surface reflects less of every variation), chroma offsets kept.
    out[..., 0] = tl + (lab[..., 0] - mean[0]) * (0.7 * tl / max(mean[0], 1.0) + 0.15)
    out[..., 1] = ta + (lab[..., 1] - mean[1]) * 0.85
    out[..., 2] = tb + (lab[..., 2] - mean[2]) * 0.85
    mixed = lab + (out - lab) * skin[..., None]
    rgb = cv2.cvtColor(mixed, cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _capsule(x, y, a, b, ra, rb):
    """Signed distance to a tapered capsule from a (radius ra) to b (radius rb)."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(x - ax - t * dx, y - ay - t * dy) - (ra + (rb - ra) * t), t


def draw_hand(image: np.ndarray, lm: np.ndarray, pose: str, rng: np.random.Generator) -> np.ndarray:
    """A right hand and forearm raised to the face, back of the hand to the camera: ``pose``
    "mouth" (fingers over the lips) or "chin" (a loose fist under the chin, the thinking pose).
    Drawn as signed distances of palm, fingers and forearm in the hand's own frame, shaded as
    rounded forms lit from above, in the colour of the face's cheeks, with a soft shadow on
    the face around it."""
    import cv2

    h, w = image.shape[:2]
    fh = float(np.linalg.norm(lm[_FOREHEAD] - lm[_CHIN]))
    mouth = 0.5 * (lm[_MOUTH_TOP] + lm[_MOUTH_BOTTOM])
    if pose == "mouth":
        size, angle = 0.95 * fh, -0.35
        palm_at = mouth + np.array([0.05, 0.28]) * fh
        curl = 0.15
    else:
        size, angle = 0.85 * fh, 0.25
        palm_at = lm[_CHIN] + np.array([-0.02, 0.22]) * fh
        curl = 1.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c, s = math.cos(angle), math.sin(angle)
    # u across the back of the hand, v up the fingers, in hand lengths.
    u = ((xx - palm_at[0]) * c + (yy - palm_at[1]) * s) / size
    v = ((xx - palm_at[0]) * s - (yy - palm_at[1]) * c) / size
    parts = []
    pu, pv = np.abs(u) - 0.16, np.abs(v - 0.02) - 0.17
    palm = np.hypot(np.maximum(pu, 0), np.maximum(pv, 0)) + np.minimum(np.maximum(pu, pv), 0) - 0.05
    parts.append((palm, 0.09))
    fore, t = _capsule(u, v, (0.0, -0.12), (0.12, -1.6), 0.17, 0.21)
    parts.append((fore, 0.2))
    creases = np.zeros_like(u)
    for k, (fu, length, spread) in enumerate(((-0.15, 0.34, 0.14), (-0.05, 0.42, 0.05), (0.05, 0.39, -0.03),
                                              (0.15, 0.3, -0.12))):
        base = (fu, 0.2)
        # A straight finger for "mouth"; folded down over the palm for a loose fist.
        first = 0.5 * length
        bend = curl * 2.2
        mid = (fu + math.sin(spread) * first, 0.2 + math.cos(spread) * first * (1 - 0.55 * curl))
        tip = (mid[0] + math.sin(spread + bend) * 0.5 * length * 0.8,
               mid[1] + math.cos(spread + bend) * 0.5 * length * 0.8)
        d1, _ = _capsule(u, v, base, mid, 0.047, 0.043)
        d2, _ = _capsule(u, v, mid, tip, 0.043, 0.037)
        parts.append((np.minimum(d1, d2), 0.045))
        creases += np.exp(-(np.hypot(u - mid[0], v - mid[1]) / 0.018) ** 2)
        creases += 0.7 * np.exp(-(np.hypot(u - base[0], v - base[1] + 0.015) / 0.03) ** 2)
    thumb, _ = _capsule(u, v, (0.17, -0.1), (0.33 - 0.12 * curl, 0.06 + 0.05 * curl), 0.06, 0.046)
    parts.append((thumb, 0.055))
    dist = np.minimum.reduce([p for p, _ in parts])
    # Rounded forms: brightness rises from each part's own edge towards its middle.
    depth = np.max([np.clip(-p / r, 0, 1) for p, r in parts], axis=0)
    lit = 0.72 + 0.34 * np.sqrt(depth) - 0.1 * np.clip(creases, 0, 1)
    lit *= 1.0 - 0.22 * np.clip(-v - 0.25, 0, 1.2)   # the forearm, lower, gets less light
    lit += 0.05 * np.clip(v, 0, 0.5)                  # knuckles and fingers catch the light
    alpha = np.clip(0.5 - dist * size, 0, 1)
    skin = np.array([np.median(image[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].reshape(-1, 3), 0)
                     for x, y in lm[list(_CHEEKS)]]).mean(0)
    tone = (skin[None, None, :] / 255.0) ** 2.2 * lit[..., None] ** 1.2
    tone = tone ** (1 / 2.2) * 255.0
    tone += rng.normal(0, 2.0, (h, w, 1)) + cv2.GaussianBlur(rng.normal(0, 6, (h, w)), (0, 0), 2.0)[..., None]
    shadow = cv2.GaussianBlur((dist < 0.02).astype(np.float32), (0, 0), 0.05 * size)
    out = image.astype(np.float64) * (1 - 0.35 * shadow[..., None] * (1 - alpha[..., None]))
    out = out * (1 - alpha[..., None]) + tone * alpha[..., None]
    out = cv2.GaussianBlur(out, (0, 0), 0.6) * alpha[..., None] + out * (1 - alpha[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def relight(frame: np.ndarray, light: str, rng: np.random.Generator) -> np.ndarray:
    """After-the-fact light: "dim-warm" (a tungsten lamp, under-exposed, noisier) or "side" (a
    lamp to the image left: the left of the frame brighter, the right darker)."""
    x = (frame.astype(np.float32) / 255.0) ** 2.2
    h, w = frame.shape[:2]
    if light == "dim-warm":
        x = x * np.float32([0.55, 0.42, 0.26])
        noise = 2.6
    elif light == "side":
        ramp = np.linspace(1.45, 0.45, w, dtype=np.float32)[None, :, None]
        x = x * ramp * np.float32([1.0, 0.98, 0.95])
        noise = 1.2
    else:
        raise ValueError(f"light must be 'dim-warm' or 'side', got {light!r}")
    out = np.clip(x, 0, 1) ** (1 / 2.2) * 255.0
    out += rng.normal(0, noise, out.shape[:2])[..., None] + rng.normal(0, noise * 0.5, out.shape)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _crop(image_shape: tuple[int, int], face: tuple[float, float, float, float], v: _Variant,
          look: Look) -> tuple[int, int, int, int]:
    h, w = image_shape
    out_w, out_h = v.size
    cx, cy, _, fh = face
    crop_h = min(h, look.crop_faces * fh)
    crop_w = crop_h * out_w / out_h
    if crop_w > w:
        crop_w, crop_h = w, w * out_h / out_w
    # The mirror flips the frame after the crop: place the face so that it lands at centre_x.
    at = 1 - look.centre_x if v.mirror else look.centre_x
    x0 = int(np.clip(cx - at * crop_w, 0, w - crop_w))
    y0 = int(np.clip(cy - 0.42 * crop_h, 0, h - crop_h))
    return x0, y0, int(crop_w), int(crop_h)


def render_variant(name: str, portraits: dict[str, np.ndarray] | None = None,
                   frames: int = FPS * SECONDS) -> np.ndarray:
    """The frames of one variant, RGB uint8 ``[T, H, W, 3]``."""
    import cv2

    v, look = VARIANTS[name]
    portraits = portraits or load_portraits()
    image = portraits[v.portrait]
    rng = np.random.default_rng(sum(map(ord, name)))  # fixed per variant, not per process
    lm = None
    if look.skin is not None or look.hand:
        lm = _mesh(image)
    if look.skin is not None:
        image = recolour_skin(image, lm, look.skin)
    if look.hand:
        image = draw_hand(image, lm, look.hand, rng)
    face = _face_box(portraits[v.portrait])  # the unedited portrait: the same head either way
    x0, y0, cw, ch = _crop(image.shape[:2], face, v, look)
    out = []
    for i in range(frames):
        t = i / FPS
        moved = _head_motion(image, face, v, i / FPS / SECONDS)
        left = x0
        if look.story == "leaves":  # pan right until the face is out of the frame, then hold
            k = float(np.clip((t - PAN_FROM) / (PAN_TO - PAN_FROM), 0, 1))
            left = int(round(x0 + (image.shape[1] - cw - x0) * (3 * k * k - 2 * k ** 3)))
        frame = cv2.resize(moved[y0:y0 + ch, left:left + cw], v.size, interpolation=cv2.INTER_AREA)
        frame = frame[:, ::-1] if v.mirror else frame
        if look.light:
            frame = relight(frame, look.light, rng)
        if look.story == "cut" and t < TITLE_SECONDS:
            frame = title_card(v.size, rng)
        if look.story == "fade":
            frame = (frame * float(np.clip((FADE_TO - t) / (FADE_TO - FADE_FROM), 0, 1)) + 0.5).astype(np.uint8)
        out.append(frame)
    return np.ascontiguousarray(np.stack(out))


def title_card(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A slate before the interview: white text on a dark blue gradient, with a little noise."""
    import cv2

    w, h = size
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    card = (np.float32([18, 28, 70]) * (1 - ramp) + np.float32([8, 12, 34]) * ramp) * np.ones((h, w, 3), np.float32)
    card += rng.normal(0, 1.0, (h, w, 1)).astype(np.float32)
    card = np.clip(card, 0, 255).astype(np.uint8)
    scale = w / 320
    cv2.putText(card, "CANDIDATE 04", (int(0.14 * w), int(0.46 * h)), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale,
                (235, 235, 235), max(1, round(2 * scale)), cv2.LINE_AA)
    cv2.putText(card, "video interview - question 3", (int(0.14 * w), int(0.60 * h)), cv2.FONT_HERSHEY_SIMPLEX,
                0.5 * scale, (190, 200, 220), 1, cv2.LINE_AA)
    cv2.line(card, (int(0.14 * w), int(0.50 * h)), (int(0.86 * w), int(0.50 * h)), (120, 150, 220), 1, cv2.LINE_AA)
    return card


def build_variants(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    portraits = load_portraits()
    rows = []
    for name, (v, look) in VARIANTS.items():
        audio, rate = speech(v.portrait, SECONDS)
        write_video(dest / f"{name}.mp4", render_variant(name, portraits), FPS, audio=audio, sample_rate=rate)
        rows.append({"clip_id": name, "subject_id": v.portrait, "framing": v.framing})
    write_metadata(dest, rows)
    return dest


def variant_clips(dest: str | os.PathLike | None = None) -> Path:
    """The folder of variant clips, built on first use (safe when processes race, as
    :func:`auditkit.media.samples.sample_clips`)."""
    return built_once(Path(dest) if dest is not None else cache_root() / f"samples-variants-v{VARIANTS_VERSION}",
                      build_variants)
