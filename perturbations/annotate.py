"""Per-frame annotations every face and background edit reuses: a person mask (MediaPipe selfie
segmentation), 478 face landmarks with irises (MediaPipe face mesh), a face box, and the hands
raised near the face (MediaPipe hands), so that a drawn scarf or glasses stay behind them.

Annotation is the expensive part of an audit on a CPU, so it runs once per clip and is cached on
disk, keyed by the clip's content hash, the sampled frame geometry and times, and
``ANNOTATOR_VERSION``. A frame without a face is a recorded state (``face_found`` false), not an
exception: inside one shot (:mod:`.shots`) a missed face between two detections is bridged by
interpolating the landmarks, and so is one within a fraction of a second of a detection; beyond
that the face is absent there (``present`` false) and an edit of the person leaves the frame as
it was. Nothing is smoothed or bridged across a cut or a fade, or across frames further apart
than :data:`.shots.REACH`. Inside the face the person mask is 1, so a background edit never
touches a face it found. An edit that needs a face decides from ``face_problem`` whether the
clip has enough of one.

The hand model costs more than the face mesh and the segmentation together, and almost every
frame of an interview has no hand near the face, so it runs only where a cheap colour test sees
skin near the head that is neither the face nor the neck (a hand, a forearm), and on the frames
next to one where a hand was found.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auditkit.contract.quiet import quiet_stderr

from .shots import REACH, links, scan, smooth_masks

ANNOTATOR_VERSION = 3  # 3: shots, links, present, person; the face is inside the mask
NUM_LANDMARKS = 478
NUM_HAND_POINTS = 21
MAX_HANDS = 2

# Landmark indices of the face mesh (subject's own left/right).
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
RIGHT_IRIS, LEFT_IRIS = 468, 473
NOSE_BRIDGE, NOSE_BRIDGE_LOW = 168, 6
RIGHT_TEMPLE, LEFT_TEMPLE = 127, 356
FOREHEAD, CHIN = 10, 152
# Hand landmarks (MediaPipe hands): the wrist, and the bones between joints (HAND_CONNECTIONS).
WRIST, MIDDLE_MCP = 0, 9
HAND_BONES = ((0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8), (9, 10),
              (9, 13), (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16), (17, 18), (18, 19),
              (19, 20))
# Skin test that decides whether to look for hands: chroma (Cr, Cb) within this many standard
# deviations of the face's own skin, in at least this share of the search zone.
SKIN_SIGMAS = 2.5
HAND_TRIGGER = 0.02
# The face oval in order around the face (from mediapipe's FACEMESH_FACE_OVAL, starting at the
# forehead and going clockwise in the image), so it can be drawn as a polygon.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@dataclass(frozen=True, eq=False)
class Annotations:
    """``mask``: float32 ``[T, H, W]`` person probability in [0, 1] (temporally smoothed);
    ``landmarks``: float32 ``[T, 478, 3]`` pixel x, y and depth z (in pixels, as x), bridged over
    gaps, NaN when the clip has no face at all; ``face_found``: bool ``[T]``, the raw detections;
    ``face_box``: float32 ``[T, 4]`` x0, y0, x1, y1 in pixels; ``hands``: float32
    ``[T, MAX_HANDS, 21, 3]`` hand landmarks in pixels (z in pixels, relative to the wrist), NaN
    where no hand was found. ``shot``: int32 ``[T]``, each frame's shot; ``links``: bool ``[T]``,
    whether a frame may be smoothed with the one before it (same shot, close in time);
    ``present``: bool ``[T]``, where the face may be drawn on (found, or bridged inside its shot);
    ``person``: bool ``[T]``, whether the frame's shot shows the person at all (a title card does
    not: a background edit leaves it as it is)."""

    mask: torch.Tensor
    landmarks: torch.Tensor
    face_found: torch.Tensor
    face_box: torch.Tensor
    hands: torch.Tensor
    shot: torch.Tensor
    links: torch.Tensor
    present: torch.Tensor
    person: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.mask.shape[0])

    @property
    def missing_faces(self) -> int:
        return int((~self.face_found).sum())

    @property
    def has_hands(self) -> bool:
        return bool(torch.isfinite(self.hands[..., 0]).any())

    @property
    def has_landmarks(self) -> bool:
        return bool(torch.isfinite(self.landmarks).all())

    def to(self, device: torch.device | str) -> "Annotations":
        """On ``device``: these very annotations when they are there already (so that what edits
        derive from them once per clip is found again), else a copy."""
        device = torch.device(device)
        if all(getattr(self, f.name).device == device for f in fields(self)):
            return self
        return Annotations(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def face_problem(self, max_missing: float) -> str | None:
        """Why a face edit cannot apply, or None: the face is missing in more than ``max_missing``
        of the frames of the shots that show the person (a title card's frames are left alone,
        not missing), or those shots are less than ``1 - max_missing`` of the clip."""
        person = self.person.bool()
        total = int(person.sum())
        missing = int((~self.face_found.bool() & person).sum())
        if total == 0 or not bool(self.face_found.any()) or not self.has_landmarks:
            return f"no face found in {self.missing_faces} of {self.num_frames} frames"
        if total < (1 - max_missing) * self.num_frames:
            return (f"no face found in {self.missing_faces} of {self.num_frames} frames "
                    f"(the person is on screen in {total} of them)")
        if missing > max_missing * total:
            return f"no face found in {missing} of the {total} frames that show the person"
        return None

    def untouched(self, requires: frozenset[str] | set[str]) -> torch.Tensor | None:
        """bool ``[T]``: the frames an edit needing ``requires`` must leave as they were: where
        the face is absent, for an edit of the face; outside the person's shots, for one that
        composites behind the person. ``None`` for an edit that needs neither."""
        if "face" in requires:
            return ~self.present.bool()
        if "mask" in requires:
            return ~self.person.bool()
        return None


def face_crop_box(annotations: "Annotations", height: int, width: int, margin: float = 0.6
                  ) -> tuple[int, int, int] | None:
    """(top, left, side) of the square a face-crop rater sees: the union of the clip's face boxes,
    grown by ``margin`` of its side on each side and kept inside the frame. One box for the whole
    clip, so head motion does not move the crop. ``None`` when the clip has no face."""
    box = annotations.face_box.detach().cpu().numpy()
    if not np.isfinite(box).all():
        return None
    x0, y0 = float(box[:, 0].min()), float(box[:, 1].min())
    x1, y1 = float(box[:, 2].max()), float(box[:, 3].max())
    side = min(max(x1 - x0, y1 - y0) * (1 + 2 * margin), height, width)
    side = max(int(side), 1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(cx - side / 2, 0, width - side))
    top = int(np.clip(cy - side / 2, 0, height - side))
    return top, left, side


def smooth_time(x: np.ndarray, valid: np.ndarray | None = None, linked: Any = None) -> np.ndarray:
    """A [1, 2, 1]/4 filter along the first axis, over valid frames only (edges renormalised),
    between neighbours that ``linked`` (bool ``[T]``, frame i to i - 1; :func:`.shots.links`)
    joins — never across a cut or frames far apart. Light on purpose: heavier would lag."""
    w = np.ones(len(x), np.float32) if valid is None else valid.astype(np.float32)
    if linked is None:
        link = np.ones(max(len(x) - 1, 0), np.float32)
    else:
        link = np.asarray(linked.cpu() if isinstance(linked, torch.Tensor) else linked, bool)[1:].astype(np.float32)
    shape = (-1,) + (1,) * (x.ndim - 1)
    wx = x * w.reshape(shape)
    num = 2 * wx
    den = 2 * w
    num[1:] += wx[:-1] * link.reshape(shape)
    num[:-1] += wx[1:] * link.reshape(shape)
    den[1:] += w[:-1] * link
    den[:-1] += w[1:] * link
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den.reshape(shape)
    return np.where(den.reshape(shape) > 0, out, x).astype(x.dtype)


def bridge_in_shots(points: np.ndarray, found: np.ndarray, shots: np.ndarray, times: np.ndarray,
                    reach: float = REACH) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks for every frame, and where they stand for a face: inside each shot, a missed face
    between two detections at most ``2 * reach`` seconds apart is interpolated (present). Nothing
    is extrapolated: past a shot's first or last detection the face may have turned, left or been
    panned away from. The rest take the nearest detection of their shot (or of the clip), only so
    that geometry stays finite (absent: no edit draws there). NaN when nothing was found."""
    out = bridge_gaps(points, found)
    present = found.copy()
    for s in np.unique(shots):
        idx = np.flatnonzero(shots == s)
        hits = idx[found[idx]]
        if hits.size == 0:
            continue
        out[idx] = bridge_gaps(points[idx], found[idx])
        for i in idx[~found[idx]]:
            k = int(np.searchsorted(hits, i))
            if 0 < k < hits.size:
                present[i] = times[hits[k]] - times[hits[k - 1]] <= 2 * reach + 1e-9
    return out, present


def bridge_gaps(points: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Fill frames without a detection: linear interpolation between detections, the nearest
    detection before the first and after the last. All NaN when nothing was found."""
    out = points.copy()
    idx = np.flatnonzero(found)
    if idx.size == 0:
        out[:] = np.nan
        return out
    t = np.arange(len(points))
    flat = points[idx].reshape(idx.size, -1)
    filled = np.stack([np.interp(t, idx, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return filled.reshape(points.shape).astype(points.dtype)


def face_boxes(landmarks: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) around each frame's landmarks; NaN for a clip without a face."""
    xy = landmarks[..., :2]
    if not np.isfinite(xy).all():
        return np.full((len(xy), 4), np.nan, np.float32)
    return np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1).astype(np.float32)


class Annotator:
    """Runs MediaPipe once per clip and caches the result. ``stats`` counts frames annotated and
    clips served from the cache, so callers can see that a re-run did no annotation work."""

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, use_cache: bool = True) -> None:
        if cache_dir is None:
            from auditkit.contract.paths import cache_root

            cache_dir = cache_root() / "annotations"
        self.cache_dir = Path(cache_dir)
        self.use_cache = use_cache
        self.stats = {"frames_annotated": 0, "clips_annotated": 0, "clips_cached": 0,
                      "frames_hand_searched": 0}
        self._mesh = self._seg = self._hands = None

    def _models(self):
        if self._mesh is None:
            import mediapipe as mp

            # Static mode: sampled frames are far apart, so tracking between them does not help,
            # and per-frame detection keeps a frame's result independent of its neighbours.
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.5)
            self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
            # A hand in front of the face is often half hidden or blurred by motion: a low
            # threshold still finds it (0.2 found a hand raised to the mouth that 0.5 missed).
            self._hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=MAX_HANDS,
                                                   model_complexity=1, min_detection_confidence=0.2)
        return self._mesh, self._seg

    def __getstate__(self) -> dict[str, Any]:
        # MediaPipe graphs do not pickle; a copy sent to another process loads its own on first use.
        return {**self.__dict__, "_mesh": None, "_seg": None, "_hands": None}

    def close(self) -> None:
        for model in (self._mesh, self._seg, self._hands):
            if model is not None:
                model.close()
        self._mesh = self._seg = self._hands = None

    def key(self, content_hash: str, frames: np.ndarray, times: np.ndarray | None = None) -> str:
        t, h, w = frames.shape[:3]
        when = "" if times is None else hashlib.sha256(np.asarray(times, np.float64).tobytes()).hexdigest()[:16]
        text = f"{content_hash}:{t}x{h}x{w}:{when}:v{ANNOTATOR_VERSION}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def annotate_clip(self, clip: Any) -> Annotations:
        """Annotations of a :class:`auditkit.media.clips.Clip` (its frames at its frame times),
        from the cache when possible."""
        return self.annotate(clip.frames, content_hash=clip.content_hash, times=clip.times)

    def annotate(self, frames: np.ndarray, *, content_hash: str | None = None,
                 times: np.ndarray | None = None) -> Annotations:
        """``times``: each frame's time in seconds. Without them the frames' spacing is unknown and
        they are taken as far apart (sampled frames of a clip): nothing temporal joins them."""
        frames = np.ascontiguousarray(frames)
        if content_hash is None:
            content_hash = hashlib.sha256(frames.tobytes()).hexdigest()
        times = np.arange(len(frames)) * 1.0 if times is None else np.asarray(times, np.float64)
        if times.shape != (len(frames),):
            raise ValueError(f"times must have one entry per frame ({len(frames)}), got shape {times.shape}")
        path = self.cache_dir / f"{self.key(content_hash, frames, times)}.npz"
        if self.use_cache and path.is_file():
            try:
                cached = _load(path)
                self.stats["clips_cached"] += 1
                return cached
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is recomputed, never trusted
        result = self._compute(frames, times)
        if self.use_cache:
            _save(path, result)
        return result

    def _compute(self, frames: np.ndarray, times: np.ndarray) -> Annotations:
        with quiet_stderr():
            return self._compute_frames(frames, times)

    def _compute_frames(self, frames: np.ndarray, times: np.ndarray) -> Annotations:
        mesh, seg = self._models()
        t, h, w = frames.shape[:3]
        masks = np.zeros((t, h, w), np.float32)
        points = np.zeros((t, NUM_LANDMARKS, 3), np.float32)
        found = np.zeros(t, bool)
        scale = np.array([w, h, w], np.float32)
        for i, frame in enumerate(frames):
            masks[i] = seg.process(frame).segmentation_mask
            faces = mesh.process(frame).multi_face_landmarks
            if faces:
                lm = faces[0].landmark
                points[i] = np.array([(p.x, p.y, p.z) for p in lm], np.float32) * scale
                found[i] = True
        self.stats["frames_annotated"] += t
        self.stats["clips_annotated"] += 1
        shot, blank = scan(frames)
        linked = links(times, shot)
        bridged, present = bridge_in_shots(points, found, shot, times)
        landmarks = smooth_time(bridged, present, linked)
        masks = smooth_masks(masks, frames, linked)
        faces_inside(masks, points, found)
        person = person_shots(shot, found, masks, blank)
        # 8-bit steps, as the cache stores them, so a cold and a warm run edit identical pixels.
        mask = np.round(np.clip(masks, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0
        hands = self._find_hands(frames, points, found, mask)
        return Annotations(mask=torch.from_numpy(mask), landmarks=torch.from_numpy(landmarks),
                           face_found=torch.from_numpy(found),
                           face_box=torch.from_numpy(face_boxes(landmarks)),
                           hands=torch.from_numpy(hands), shot=torch.from_numpy(shot),
                           links=torch.from_numpy(linked), present=torch.from_numpy(present),
                           person=torch.from_numpy(person))

    def _find_hands(self, frames: np.ndarray, points: np.ndarray, found: np.ndarray,
                    mask: np.ndarray) -> np.ndarray:
        """Hand landmarks ``[T, MAX_HANDS, 21, 3]`` (NaN: none) where the skin test says a hand may
        be near the face, and beside every frame where one was found."""
        t, h, w = frames.shape[:3]
        hands = np.full((t, MAX_HANDS, NUM_HAND_POINTS, 3), np.nan, np.float32)
        todo = [i for i in range(t) if found[i] and skin_near_head(frames[i], points[i], mask[i])]
        done: set[int] = set()
        scale = np.array([w, h, w], np.float32)
        while todo:
            i = todo.pop(0)
            if i in done:
                continue
            done.add(i)
            found_hands = self._hands.process(frames[i]).multi_hand_landmarks or []
            result = [pts for pts in (np.array([(p.x, p.y, p.z) for p in hand.landmark], np.float32) * scale
                                      for hand in found_hands) if _near_face(pts, points[i])]
            for k, pts in enumerate(result[:MAX_HANDS]):
                hands[i, k] = pts
            if result:
                todo += [j for j in (i - 1, i + 1) if 0 <= j < t and j not in done]
        self.stats["frames_hand_searched"] += len(done)
        return hands


FACE_CORE = 0.92  # the face oval, shrunk about its centre, that is always the person


def faces_inside(masks: np.ndarray, points: np.ndarray, found: np.ndarray) -> None:
    """Set the mask to 1 inside each found face (its oval, shrunk a little so the edge band is
    the segmentation's): the person's face is never part of the background."""
    import cv2

    for i in np.flatnonzero(found):
        oval = points[i, list(FACE_OVAL), :2].astype(np.float64)
        core = (oval - oval.mean(0)) * FACE_CORE + oval.mean(0)
        inside = np.zeros(masks.shape[1:], np.uint8)
        cv2.fillPoly(inside, [np.round(core).astype(np.int32)], 1)
        masks[i][inside.astype(bool)] = 1.0


def person_shots(shot: np.ndarray, found: np.ndarray, masks: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """bool ``[T]``: whether each frame's shot shows the person — a face found in it, or (a person
    turned away) at least 2% of the picture held by the person in half of its frames. A blank
    frame (the bottom of a fade) never does."""
    covered = (masks > 0.5).mean(axis=(1, 2)) >= 0.02
    out = np.zeros(len(shot), bool)
    for s in np.unique(shot):
        idx = shot == s
        out[idx] = bool(found[idx].any()) or covered[idx].mean() >= 0.5
    return out & ~blank


def _near_face(hand: np.ndarray, face: np.ndarray) -> bool:
    """A detection that can be a hand in front of this face: of a hand's size for this face, and
    near it. A low detection threshold finds hands that are half hidden, and also some that are
    not hands at all (a flag's stripes): only a hand near the face matters to an edit."""
    fh = float(np.linalg.norm(face[FOREHEAD, :2] - face[CHIN, :2]))
    palm = float(np.linalg.norm(hand[WRIST, :2] - hand[MIDDLE_MCP, :2]))
    centre = 0.5 * (face[FOREHEAD, :2] + face[CHIN, :2])
    nearest = float(np.linalg.norm(hand[:, :2] - centre, axis=1).min())
    return 0.15 * fh <= palm <= 1.2 * fh and nearest <= 1.6 * fh


def skin_near_head(frame: np.ndarray, points: np.ndarray, mask: np.ndarray) -> bool:
    """Whether skin coloured like this face shows near the head outside the face and the neck:
    the cheap test that decides whether to run the hand model on a frame. A false alarm costs one
    hand search; a miss lets a drawn scarf cover a hand, so the test errs towards searching."""
    import cv2

    h, w = frame.shape[:2]
    xy = points[:, :2]
    oval = xy[list(FACE_OVAL)]
    top, chin = xy[FOREHEAD], xy[CHIN]
    fh = float(np.linalg.norm(top - chin))
    if not np.isfinite(fh) or fh < 4:
        return False
    x0, x1 = int(max(0, oval[:, 0].min() - 1.0 * fh)), int(min(w, oval[:, 0].max() + 1.0 * fh))
    y0, y1 = int(max(0, top[1] - 0.3 * fh)), int(min(h, chin[1] + 1.0 * fh))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return False
    # Work at about 48 pixels per face height: the test looks for hand-sized regions.
    step = max(1, int(fh // 48))
    crop = np.ascontiguousarray(frame[y0:y1:step, x0:x1:step])
    ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    face = np.zeros(crop.shape[:2], np.uint8)
    inner = (oval - oval.mean(0)) * 0.8 + oval.mean(0)
    cv2.fillPoly(face, [np.round((inner - (x0, y0)) / step).astype(np.int32)], 1)
    sample = ycc[face.astype(bool)]
    if len(sample) < 10:
        return False
    mean, std = sample.mean(0), sample.std(0) + (12.0, 2.0, 2.0)
    skin = (np.abs((ycc - mean) / std) < (SKIN_SIGMAS + 1.0, SKIN_SIGMAS, SKIN_SIGMAS)).all(-1)
    skin &= mask[y0:y1:step, x0:x1:step] > 0.5
    # Not the face (grown a little: ears, jaw) and not the throat just below the chin; a hand
    # under the chin reaches further down than a throat does.
    known = np.zeros_like(face)
    grown = (oval - oval.mean(0)) * 1.15 + oval.mean(0)
    cv2.fillPoly(known, [np.round((grown - (x0, y0)) / step).astype(np.int32)], 1)
    half = 0.28 * float(oval[:, 0].max() - oval[:, 0].min())
    neck = np.array([(chin[0] - half, chin[1] - 0.2 * fh), (chin[0] + half, chin[1] - 0.2 * fh),
                     (chin[0] + 1.2 * half, chin[1] + 0.25 * fh), (chin[0] - 1.2 * half, chin[1] + 0.25 * fh)])
    cv2.fillPoly(known, [np.round((neck - (x0, y0)) / step).astype(np.int32)], 1)
    stray = skin & ~known.astype(bool)
    # Above the eyes skin-coloured pixels are mostly hair (blond, red, grey): a hand held up
    # there comes down past the face, where it is seen anyway.
    eyes = int((0.5 * (xy[33, 1] + xy[263, 1]) - y0) / step)
    stray[:max(0, eyes)] = False
    return float(stray.mean()) > HAND_TRIGGER


def _save(path: Path, a: Annotations) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")  # .npz: numpy appends nothing
    os.close(fd)
    try:
        np.savez_compressed(tmp, mask=np.round(a.mask.numpy() * 255).astype(np.uint8),
                            landmarks=a.landmarks.numpy(), face_found=a.face_found.numpy(),
                            face_box=a.face_box.numpy(), hands=a.hands.numpy(), shot=a.shot.numpy(),
                            links=a.links.numpy(), present=a.present.numpy(), person=a.person.numpy(),
                            version=ANNOTATOR_VERSION)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> Annotations:
    with np.load(path, allow_pickle=False) as data:
        if int(data["version"]) != ANNOTATOR_VERSION:
            raise ValueError("annotator version changed")
        return Annotations(mask=torch.from_numpy(data["mask"].astype(np.float32) / 255.0),
                           landmarks=torch.from_numpy(data["landmarks"]),
                           face_found=torch.from_numpy(data["face_found"]),
                           face_box=torch.from_numpy(data["face_box"]),
                           hands=torch.from_numpy(data["hands"]), shot=torch.from_numpy(data["shot"]),
                           links=torch.from_numpy(data["links"]), present=torch.from_numpy(data["present"]),
                           person=torch.from_numpy(data["person"]))
