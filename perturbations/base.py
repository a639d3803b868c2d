"""The perturbation interface: counterfactual edits as pure functions of (frames, annotations, params).

Modelled on torchvision transforms v2: ``make_params`` draws the random parameters once per
clip, ``transform`` applies them to every frame, so a clip gets one consistent edit (the same
glasses, the same dimmer light) rather than a flicker of different ones.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from auditkit.contract.arms import CONTRAST, ORIGINAL, ROLES, Arm


DEFAULT_MAX_MISSING_FACE = 0.5  # a face edit needs a face in at least half of the frames


class NotApplicable(Exception):
    """The edit cannot apply to this clip (e.g. no face found). The pair is listed as skipped."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class Edit:
    """``frames``: uint8 ``[T, H, W, 3]`` on the input's device; ``changed``: bool ``[T, H, W]``,
    true where any channel differs from the input; ``params``: what ``make_params`` drew;
    ``left_alone``: the frames the edit did not touch because what it edits is not there (the
    face out of view, a shot without the person)."""

    frames: torch.Tensor
    original: torch.Tensor = field(repr=False)
    params: Mapping[str, Any] = field(default_factory=dict)
    left_alone: tuple[int, ...] = ()

    @functools.cached_property
    def changed(self) -> torch.Tensor:
        # Computed when asked: an audit scores the edit and never needs it.
        return (self.frames != self.original).any(dim=-1)


def as_frames(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Validate uint8 ``[T, H, W, 3]`` frames; numpy arrays become tensors sharing memory."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames)
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a torch.Tensor or numpy array, got {type(frames).__name__}")
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} "
                         f"{tuple(frames.shape)}")
    return frames


_PER_CLIP: "weakref.WeakKeyDictionary[Any, tuple[Any, int, dict[str, Any]]]" = weakref.WeakKeyDictionary()


def per_clip(frames: torch.Tensor, annotations: Any, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, once per clip: what several edits derive from the same frames and
    annotations (the person's refined alpha, the clean plate, the camera's look) is computed by
    the first edit and reused by the others while both objects live. The key is identity, never
    value, and the frames' in-place version counter: other frames, or these frames changed in
    place, are computed afresh, so a reused value is never stale."""
    try:
        entry = _PER_CLIP.get(annotations)
    except TypeError:  # annotations that cannot be weakly referenced: nothing is kept
        return compute()
    if entry is None or entry[0]() is not frames or entry[1] != frames._version:
        entry = (weakref.ref(frames), frames._version, {})
        _PER_CLIP[annotations] = entry
    if key not in entry[2]:
        entry[2][key] = compute()
    return entry[2][key]


def to_float(frames: torch.Tensor) -> torch.Tensor:
    return frames.to(torch.float32) / 255.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def clip_seed(seed: int, clip_id: str, name: str) -> int:
    """A seed that depends only on (run seed, clip, edit): the same pixels whatever the batching,
    the order of clips, the executor or a resume."""
    digest = hashlib.sha256(f"{seed}\0{clip_id}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class Perturbation(ABC):
    """A named counterfactual edit. Subclasses set ``name`` (``family:variant``), ``description``,
    and ``requires`` (annotation kinds they need: ``"face"`` for landmarks, ``"mask"`` for the
    person mask) and implement ``transform``; the family is the name's. An edit that requires a
    face raises :class:`NotApplicable` when the face is missing in more than ``max_missing_face``
    of the frames."""

    name: str = ""
    description: str = ""
    requires: frozenset[str] = frozenset()
    # A control that changes which frames are sampled rather than their pixels sets the offset,
    # in sampling intervals, of the frames it needs; the caller decodes them (see controls.py).
    resample: float | None = None
    # "fairness": an edit that must not matter for a hiring decision, whose verdict can fail an
    # audit; "attribution": an edit that asks where the rater looks (region:*), which a rater is
    # expected to react to — judged as a family of its own and never a failure.
    role: str = "fairness"
    # What the edit changes: "picture" (the frames; the sound is passed through, its stream
    # copied), "sound" (the sound; every frame untouched, see sound.py) or "both".
    touches: str = "picture"

    @property
    def family(self) -> str:
        return family_of(self.name)

    @property
    def arm(self) -> Arm:
        """This edit's test in an audit: its scores against the original's."""
        return Arm(self.name, self.name, ORIGINAL, self.family, self.role)

    def make_params(self, frames: torch.Tensor, annotations: Any,
                    rng: np.random.Generator) -> dict[str, Any]:
        return {}

    @abstractmethod
    def transform(self, frames: torch.Tensor, params: Mapping[str, Any],
                  annotations: Any) -> torch.Tensor:
        """Return new uint8 frames; never write into ``frames``."""

    def __call__(self, frames: torch.Tensor | np.ndarray, annotations: Any = None, *,
                 rng: np.random.Generator | None = None, seed: int | None = None,
                 max_missing_face: float = DEFAULT_MAX_MISSING_FACE) -> Edit:
        frames = as_frames(frames)
        if self.requires:
            if annotations is None:
                raise ValueError(f"{self.name} needs annotations ({', '.join(sorted(self.requires))}); "
                                 "get them from auditkit.perturbations.annotate.Annotator")
            if tuple(annotations.mask.shape) != tuple(frames.shape[:3]):
                raise ValueError(f"{self.name}: annotations are for frames of shape "
                                 f"{tuple(annotations.mask.shape)}, not {tuple(frames.shape[:3])}")
            annotations = annotations.to(frames.device)
            if "face" in self.requires:
                problem = annotations.face_problem(max_missing_face)
                if problem:
                    raise NotApplicable(problem)
        if rng is None:
            rng = np.random.default_rng(0 if seed is None else seed)
        params = self.make_params(frames, annotations, rng)
        out = self.transform(frames, params, annotations)
        if out.shape != frames.shape or out.dtype != torch.uint8:
            raise RuntimeError(f"{self.name}: transform returned {out.dtype} {tuple(out.shape)}, "
                               f"expected uint8 {tuple(frames.shape)}")
        # An edit of the person never draws where the person is not: a frame where the face is
        # out of view, or a shot (a title card) without them, stays exactly as it was.
        keep = annotations.untouched(self.requires) if self.requires else None
        alone: tuple[int, ...] = ()
        if keep is not None and bool(keep.any()):
            keep = keep.to(out.device)
            out = torch.where(keep.view(-1, 1, 1, 1), frames, out)
            alone = tuple(int(i) for i in keep.nonzero().flatten())
        return Edit(frames=out, original=frames, params=params, left_alone=alone)

    def __repr__(self) -> str:
        return f"<Perturbation {self.name}>"


_REGISTRY: dict[str, Callable[..., Perturbation]] = {}
_EXPLICIT_ONLY: set[str] = set()


_ROLE: dict[str, str] = {}
_SEPARATOR = " vs "  # a contrast's name: "A vs B" is A − B per candidate
_PARAMETER = "@"     # ``noise:street@5``: a registered edit with its parameter set (here the SNR, in dB)


def family_of(name: str) -> str:
    """The family of a registered edit's name (``glasses:thick`` → ``glasses``)."""
    return name.partition(":")[0]


def variant_of(name: str) -> str:
    """The variant of a registered edit's name within its family (``region:face`` → ``face``)."""
    return name.partition(":")[2]


def register(name: str, factory: Callable[..., Perturbation], *, in_family: bool = True,
             role: str = "fairness") -> None:
    """Add an edit. ``in_family=False``: a bare family name does not expand to it (it needs
    options the user must give, such as a folder of images). ``role``: the question its test
    answers (``attribution`` for the region ablations); its instances must say the same."""
    if ":" not in name or _SEPARATOR in name or _PARAMETER in name or not family_of(name):
        raise ValueError(f"perturbation names are 'family:variant', got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"perturbation {name!r} is already registered")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    _REGISTRY[name] = factory
    _ROLE[name] = role
    if not in_family:
        _EXPLICIT_ONLY.add(name)


def contrast_arm(a: str, b: str, role: str | None = None) -> Arm:
    """The test that compares edit ``a`` with edit ``b`` directly (``a`` − ``b`` per candidate).
    Its role is ``attribution`` only when both edits ask where the rater looks."""
    if role is None:
        role = ("attribution" if _ROLE.get(a.partition(_PARAMETER)[0]) == _ROLE.get(b.partition(_PARAMETER)[0])
                == "attribution" else "fairness")
    return Arm(f"{a}{_SEPARATOR}{b}", a, b, CONTRAST, role)


def contrast_pair(text: str) -> tuple[str, str] | None:
    """The two edits of a contrast written ``A vs B`` (as on the command line), or ``None`` when
    the text is not two names around ``vs``."""
    parts = [p.strip() for p in text.split(_SEPARATOR)]
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def arm_of(name: str, role: str | None = None) -> Arm:
    """The arm a test's name stands for: an edit (``glasses:thick``) or a contrast
    (``background:bookshelf vs background:plain``). For names read back from an ``audit.json``
    written before tests carried their arm, and for the pytest plugin, which must know its tests
    before any rater is loaded. ``role``: what the file says, when it says it; else the
    registry's (``fairness`` for a name it does not know)."""
    a, sep, b = name.partition(_SEPARATOR)
    if sep:
        return contrast_arm(a, b, role)
    return Arm(name, name, ORIGINAL, family_of(name), role or _ROLE.get(name.partition(_PARAMETER)[0], "fairness"))


def available(family: str | None = None) -> list[str]:
    """Registered names; with ``family``, the variants a bare family name expands to."""
    if family is None:
        return sorted(_REGISTRY)
    return sorted(n for n in _REGISTRY if family_of(n) == family and n not in _EXPLICIT_ONLY)


def families() -> list[str]:
    return sorted({family_of(n) for n in _REGISTRY})


def get(name: str, **options: Any) -> Perturbation:
    """An instance of a registered edit. ``options`` (e.g. ``scenes_dir``) reach the factories
    that take them and are ignored by the others. ``name@value`` sets the parameter of an edit
    whose factory takes one (its ``at`` argument, e.g. ``noise:street@5`` for an SNR of 5 dB);
    the instance is named with it, a condition of its own."""
    base, sep, value = name.partition(_PARAMETER)
    if sep:
        accepted = inspect.signature(_REGISTRY[base]).parameters if base in _REGISTRY else get(base)
        if "at" not in accepted:
            takes = [n for n in available() if "at" in inspect.signature(_REGISTRY[n]).parameters]
            raise KeyError(f"{base!r} takes no parameter (got {name!r}); the edits that take one: {', '.join(takes)}")
        try:
            edit = _REGISTRY[base](at=value.strip(), **{k: v for k, v in options.items() if k in accepted})
        except ValueError as exc:
            raise KeyError(f"{name!r}: {exc}") from None
        if edit.name.partition(_PARAMETER)[0] != base:
            raise RuntimeError(f"perturbation {name!r}: its factory made {edit.name!r}")
        return edit
    try:
        factory = _REGISTRY[name]
    except KeyError:
        if name in families():
            raise KeyError(f"{name!r} is a family ({', '.join(available(name))}); get() takes one "
                           "edit, resolve() takes a family") from None
        close = difflib.get_close_matches(name, list(_REGISTRY) + families(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown perturbation {name!r}{hint} (available: {', '.join(available())})") from None
    accepted = inspect.signature(factory).parameters
    edit = factory(**{k: v for k, v in options.items() if k in accepted})
    if edit.name != name or edit.role != _ROLE[name]:
        raise RuntimeError(f"perturbation {name!r} is registered as a {_ROLE[name]} edit but its factory made "
                           f"{edit.name!r} ({edit.role})")
    return edit


def resolve(spec: str | list[str] | tuple[str, ...], **options: Any) -> list[Perturbation]:
    """``"lighting:dim,glasses"`` → instances; a bare family name expands to all its variants."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: dict[str, Perturbation] = {}
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        expanded = available(name) if ":" not in name else [name]
        if not expanded:
            get(name)  # raises the helpful KeyError
        for n in expanded:
            if n not in out:
                out[n] = get(n, **options)
    if not out:
        raise KeyError("no perturbation named (available: " + ", ".join(available()) + ")")
    return list(out.values())
