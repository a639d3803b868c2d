"""Region ablation: replace one region of the picture — the face, the hair and head around it, the
body, or the background — with a flat grey, so the audit's paired tests say, per trait, how much
the rater's score rests on that region. Being edits, they run on every rater kind and executor.

**The partition.** Every pixel of every frame is split between the four regions with weights that
sum to one (up to float rounding), from the cached annotations:

- ``face``: the face oval of the mesh (``annotate.FACE_OVAL``), drawn anti-aliased. It wins over
  the person mask: a face the segmentation half-missed is still face.
- ``hair``: the person mask outside the face oval, inside a head zone — an ellipse around the face
  in face-relative units (face height = forehead to chin landmark, rotated with the head), cut at
  the chin line. Hair, ears, the sides of the jaw and neck above the chin, a hat. Long hair hanging
  below the chin counts as body.
- ``body``: the rest of the person mask (neck below the chin, shoulders, clothes, hands).
- ``background``: everything else, ``1 − person mask`` outside the face oval.

With ``f`` the oval, ``p`` the person mask and ``h`` the head zone (each in [0, 1], soft only over
their one-pixel edge and the mask's own soft band): ``face = f``, ``hair = (1 − f)·p·h``,
``body = (1 − f)·p·(1 − h)``, ``background = (1 − f)·(1 − p)``. :func:`region_masks` returns these
weights; the attribution in :mod:`auditkit.core.explain` aggregates over the same ones.

**The fill.** Each pixel becomes ``x·(1 − w) + GREY·w`` with ``w`` its weight for the region and
``GREY`` a fixed mid-grey, the same for every clip. The alternatives fail the one requirement — the
ablated region must carry no information about the candidate:

- the region's mean colour (or a blur "to nothing", which tends to it) keeps the region's
  brightness and colour, exactly the cues the 2021 test found raters reacting to (lighting, the
  wall), so a rater reading the wall's brightness would look as if it ignored the background;
- a per-clip inpaint fills the region from its neighbours — the background smeared from the shirt
  and hair, the face from the background — importing the other regions' content into this one, a
  cue correlated with what the rater may legitimately read, and counted twice.

A constant carries nothing about the clip. What it adds is a flat grey area of the region's shape,
the same in every clip: a rater's reaction to "grey here" is common to all candidates (it shows in
the mean shift, not as a difference between candidates), and the area's outline is no news — it is
the edge of the neighbouring regions, which stay. What no fill avoids: a region whose pixels are
already close to the grey (a grey wall) cannot be ablated, and a rater reading it will not be seen
here — nor by Integrated Gradients from the same grey baseline.

**The control.** A background swap needs a sham because compositing leaves artefacts at the mask
edge that are not the scene's content. Nothing is composited here — each pixel moves toward the
grey by its own weight, and the four weights sum to one — so there is no pipeline artefact to
subtract; what remains is the rater's reaction to the grey itself, a picture no candidate shows.
Its reference is the whole grey frame, ``region:all`` (named explicitly, not in the family): the
score when there is nothing to see. It is also exactly the shift that Integrated Gradients from
the same grey baseline distributes over the pixels (completeness), so the ablation and gradient
methods can be checked against each other on the same clips.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .annotate import CHIN, FACE_OVAL, FOREHEAD, Annotations
from .base import Perturbation, register

REGIONS = ("face", "hair", "body", "background")
GREY = 128  # the fill, uint8; 128/255 is the rater's input mid-range
# The head zone, in face heights (forehead landmark to chin) from the face centre (their midpoint),
# v down the face, u across it. The ellipse reaches 0.85 above the forehead and 0.9 to each side:
# hair of the sample portraits and of ordinary hairstyles, ears, a hat; the chin line ends the head.
HEAD_CENTRE_V = -0.1
HEAD_HALF_WIDTH = 0.9
HEAD_HALF_HEIGHT = 1.25
CHIN_LINE_V = 0.5
_SUBPIXEL = 4  # cv2 polygon vertices with 4 fractional bits


def face_oval(landmarks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """float ``[T, H, W]``: the mesh's face oval, 1 inside, anti-aliased at its edge."""
    lm = landmarks[:, list(FACE_OVAL), :2].detach().cpu().numpy().astype(np.float64)
    out = np.zeros((len(lm), height, width), np.uint8)
    for i, points in enumerate(lm):
        # Landmarks are in pixel units from the image's edge; cv2 puts pixel centres on integers.
        poly = np.round((points - 0.5) * (1 << _SUBPIXEL)).astype(np.int32)
        cv2.fillPoly(out[i], [poly], 255, lineType=cv2.LINE_AA, shift=_SUBPIXEL)
    return torch.from_numpy(out).to(torch.float32).div_(255.0)


def head_zone(landmarks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """float ``[T, H, W]``: the ellipse around the face above the chin line (one-pixel soft edge).

    Only + − × ÷ and sqrt per pixel (the pose is per frame, in float64 numpy): IEEE-exact in
    vectorised and scalar kernels alike, so the weights do not depend on the thread count."""
    lm = landmarks[..., :2].detach().cpu().numpy().astype(np.float64)
    top, chin = lm[:, FOREHEAD], lm[:, CHIN]
    centre = 0.5 * (top + chin)
    face_h = np.linalg.norm(chin - top, axis=1)
    down = (chin - top) / face_h[:, None]             # unit vector of v, down the face
    across = np.stack([-down[:, 1], down[:, 0]], 1)   # u axis, pointing to image right when upright
    per_frame = np.concatenate([centre, down, across, face_h[:, None]], 1).astype(np.float32)
    cx, cy, dx, dy, ax, ay, fh = (torch.from_numpy(np.ascontiguousarray(per_frame[:, k])).view(-1, 1, 1)
                                  for k in range(7))
    ys = (torch.arange(height, dtype=torch.float32) + 0.5).view(1, -1, 1)
    xs = (torch.arange(width, dtype=torch.float32) + 0.5).view(1, 1, -1)
    ox, oy = xs - cx, ys - cy
    u = (ox * ax + oy * ay) / fh
    v = (ox * dx + oy * dy) / fh
    a, b = u / HEAD_HALF_WIDTH, (v - HEAD_CENTRE_V) / HEAD_HALF_HEIGHT
    r = (a * a + b * b).sqrt()
    inside = ((1.0 - r) * (min(HEAD_HALF_WIDTH, HEAD_HALF_HEIGHT) * fh) + 0.5).clamp(0, 1)
    above_chin = ((CHIN_LINE_V - v) * fh + 0.5).clamp(0, 1)
    return inside * above_chin


def region_weight(annotations: Annotations, region: str) -> torch.Tensor:
    """float ``[T, H, W]`` in [0, 1]: how much each pixel belongs to ``region`` (see the module
    docstring). A clip without face landmarks has no face and no hair: its person is all body."""
    if region not in REGIONS:
        raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    person = annotations.mask.to("cpu", torch.float32)
    t, h, w = person.shape
    if annotations.has_landmarks:
        landmarks = annotations.landmarks.cpu()
        face = face_oval(landmarks, h, w)
        head = head_zone(landmarks, h, w) if region in ("hair", "body") else None
    else:
        face = torch.zeros_like(person)
        head = torch.zeros_like(person)
    if region == "face":
        return face
    rest = 1.0 - face
    if region == "background":
        return rest * (1.0 - person)
    if region == "hair":
        return rest * person * head
    return rest * person * (1.0 - head)


def region_masks(annotations: Annotations) -> torch.Tensor:
    """float ``[T, 4, H, W]`` on the CPU, the weights of ``REGIONS`` in that order; they sum to
    one at every pixel (within float rounding)."""
    return torch.stack([region_weight(annotations, r) for r in REGIONS], dim=1)


def fill(frames: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` with each pixel moved toward ``GREY`` by its weight ``[T, H, W]``."""
    w = weight.to(frames.device).unsqueeze(-1)
    x = frames.to(torch.float32)
    blended = (x * (1.0 - w) + GREY * w).round_().clamp_(0, 255).to(torch.uint8)
    return torch.where(w > 0, blended, frames)


class RegionAblation(Perturbation):
    role = "attribution"

    def __init__(self, region: str, description: str) -> None:
        self.region = region
        self.name = f"region:{region}"
        self.description = description
        # Face, hair and body are cut from each other by the mesh: no face, no partition. The
        # background is what the person mask leaves, with or without a face.
        self.requires = frozenset({"all": (), "background": {"mask"}}.get(region, {"face", "mask"}))

    def transform(self, frames, params, annotations):
        if self.region == "all":
            return fill(frames, torch.ones(frames.shape[:3]))
        return fill(frames, region_weight(annotations, self.region))


_DESCRIPTIONS = {
    "face": "the face (the mesh's face oval) replaced by flat grey",
    "hair": "hair and head around the face (ears, a hat, the neck above the chin) replaced by flat grey",
    "body": "the body below the head (neck, shoulders, clothes, hands) replaced by flat grey",
    "background": "everything behind the person replaced by flat grey",
}

for _region, _text in _DESCRIPTIONS.items():
    register(f"region:{_region}", lambda r=_region, d=_text: RegionAblation(r, d), role="attribution")
register("region:all", lambda: RegionAblation("all", "control: the whole frame flat grey (nothing to see)"),
         in_family=False, role="attribution")

__all__ = ["GREY", "REGIONS", "RegionAblation", "face_oval", "fill", "head_zone", "region_masks",
           "region_weight"]
