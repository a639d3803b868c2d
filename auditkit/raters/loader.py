"""``load_rater(spec)``: a rater from a spec string, through a registry of rater kinds.

Each kind says which specs it takes (a prefix such as ``builtin:``, file suffixes, or a look at
the file's content) and how to load them. The kinds shipped here register below; others — the
training checkpoints of :mod:`auditkit.models`, or a user's own format — register through the
``auditkit.raters`` entry-point group, so the audit's core never imports them.

* ``builtin:appearance`` / ``builtin:constant`` — reference raters shipped with auditkit;
* ``path/model.pt`` or ``.ts`` — a TorchScript file (metadata in the extra file ``auditkit.json``);
* ``path/model.pt2`` — a torch.export ExportedProgram (metadata in the archive's ``auditkit.json``);
* ``path/model.pt``, ``.pth`` or ``.ckpt`` holding a training checkpoint (``auditkit.models``);
* ``path/model.onnx`` — an ONNX model run by onnxruntime (metadata in ``metadata_props``);
* ``path/file.py:name`` or ``package.module:name`` — a factory returning a rater or an ``nn.Module``;
* ``http:PATH.toml`` or ``https://host/path`` — a vendor's HTTP endpoint (see :mod:`.http_rater`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from auditkit.contract.errors import RaterError
from auditkit.contract.rater import OCEAN, InputSpec

from .torchscript import TorchRater

ENTRY_POINT_GROUP = "auditkit.raters"


@dataclass(frozen=True)
class RaterKind:
    """One way of loading a rater. ``load(spec, device)`` returns the rater; a spec is this
    kind's when it starts with one of ``prefixes``, or names a file with one of ``suffixes``
    that ``claims`` (when given) accepts after looking inside."""

    name: str
    load: Callable[[str, torch.device], Any]
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    claims: Callable[[Path], bool] | None = None
    example: str = ""


_KINDS: list[RaterKind] = []
_ENTRY_POINTS_LOADED = False


def register_kind(kind: RaterKind) -> None:
    if any(k.name == kind.name for k in _KINDS):
        raise ValueError(f"rater kind {kind.name!r} is already registered")
    _KINDS.append(kind)


def kinds() -> list[RaterKind]:
    """Every registered kind, the entry-point ones included, in the order they are tried."""
    global _ENTRY_POINTS_LOADED
    if not _ENTRY_POINTS_LOADED:
        _ENTRY_POINTS_LOADED = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if any(k.name == ep.name for k in _KINDS):
                continue
            try:
                kind = ep.load()
            except Exception as exc:  # a broken third-party kind must not stop the others
                raise RaterError(f"rater kind {ep.name!r} ({ep.value}) cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}") from None
            if not isinstance(kind, RaterKind):
                raise RaterError(f"rater kind {ep.name!r} ({ep.value}) is not an auditkit.raters.RaterKind")
            _KINDS.append(kind)
    return list(_KINDS)


def as_rater(obj: Any, *, name: str = "rater") -> Any:
    """Accept a ready rater, or wrap an ``nn.Module`` with default metadata."""
    if isinstance(obj, nn.Module):
        # A module that declares its traits and input (OceanRegressor does) keeps them.
        return TorchRater(obj, tuple(getattr(obj, "trait_names", OCEAN)),
                          getattr(obj, "input", None) or InputSpec(), name=name)
    missing = [a for a in ("trait_names", "input") if not hasattr(obj, a)]
    if missing or not callable(obj):
        what = "callable" if not callable(obj) else f"attribute(s) {', '.join(missing)}"
        raise RaterError(f"{name}: not a rater (missing {what}); return an nn.Module or an object "
                         "with trait_names, input (InputSpec) and __call__")
    if not isinstance(obj.input, InputSpec):
        raise RaterError(f"{name}: 'input' must be an auditkit.raters.InputSpec")
    names = tuple(obj.trait_names)
    if not names or not all(isinstance(t, str) and t for t in names) or len(set(names)) != len(names):
        raise RaterError(f"{name}: trait_names must be distinct non-empty strings, got {names!r}")
    if not getattr(obj, "name", None):
        try:
            obj.name = name
        except AttributeError:
            pass
    return obj


def resolve_kind(spec: str) -> RaterKind:
    """The kind that loads ``spec``; a spec no kind takes is one line naming the choices."""
    registered = kinds()
    for kind in registered:
        if kind.prefixes and spec.startswith(kind.prefixes):
            return kind
    path = Path(spec)
    suffix = path.suffix.lower()
    by_suffix = [k for k in registered if suffix and suffix in k.suffixes]
    if by_suffix and ":" not in path.name:
        if path.is_dir():
            raise RaterError(f"rater {spec!r}: is a folder, not a model file")
        if not path.is_file():
            raise RaterError(f"rater {spec!r}: file does not exist")
        for kind in by_suffix:
            if kind.claims is None or kind.claims(path):
                return kind
        raise RaterError(f"rater {spec!r}: no rater kind reads this file "
                         f"(tried {', '.join(k.name for k in by_suffix)})")
    if ":" in spec:
        return _FACTORY
    raise RaterError(f"rater {spec!r} does not resolve: give "
                     + ", ".join(k.example for k in registered if k.example))


def rebase_spec(spec: str, base: Path) -> str:
    """``spec`` with its file part (if any) made relative to ``base`` instead of the working
    folder: a model file of any registered kind, ``file.py`` of a factory, the description file of
    ``http:FILE``. Names, URLs and ``package.module:name`` are returned unchanged."""
    def rebased(path: str) -> str:
        return path if not path or Path(path).is_absolute() else str(base / path)

    if spec.startswith(("http://", "https://", "builtin:")):
        return spec
    if spec.startswith("http:"):
        return "http:" + rebased(spec[len("http:"):])
    target, colon, attr = spec.rpartition(":")
    if colon and target.endswith(".py"):
        return rebased(target) + ":" + attr
    suffixes = {s for k in kinds() for s in k.suffixes}
    if Path(spec).suffix.lower() in suffixes and ":" not in Path(spec).name:
        return rebased(spec)
    return spec


def load_rater(spec: str | Any, *, device: str | torch.device = "cpu") -> Any:
    """Resolve a rater spec (see the module docstring) and move it to ``device``."""
    device = torch.device(device)
    if not isinstance(spec, str):
        rater = as_rater(spec)
    else:
        rater = resolve_kind(spec).load(spec, device)
        try:
            rater.source = spec  # how to load it again elsewhere (auditkit.raters.travel)
        except AttributeError:
            pass
    if hasattr(rater, "to"):
        rater.to(device)
    if not getattr(rater, "name", None) or rater.name == "module":
        rater.name = spec if isinstance(spec, str) else type(spec).__name__
    return rater


# ------------------------------------------------------------------ the kinds shipped here
def _builtin(spec: str, device: torch.device) -> Any:
    from .builtin import BUILTIN

    key = spec.split(":", 1)[1]
    if key not in BUILTIN:
        raise RaterError(f"rater {spec!r}: unknown built-in; choose one of "
                         + ", ".join(f"builtin:{k}" for k in BUILTIN))
    return BUILTIN[key]()


def _http(spec: str, device: torch.device) -> Any:
    from .http_rater import load_http_rater

    return load_http_rater(spec)


def _torchscript(spec: str, device: torch.device) -> Any:
    from .torchscript import load_torchscript

    return load_torchscript(Path(spec))


def _is_torchscript(path: Path) -> bool:
    from .torchscript import is_torchscript

    return path.suffix.lower() == ".ts" or is_torchscript(path)


def _exported(spec: str, device: torch.device) -> Any:
    from .torchscript import load_exported

    return load_exported(Path(spec))


def _is_exported(path: Path) -> bool:
    from .torchscript import is_exported

    return is_exported(path)


def _onnx(spec: str, device: torch.device) -> Any:
    from .onnx_rater import OnnxRater

    return OnnxRater(Path(spec), str(device))


def _factory(spec: str, device: torch.device) -> Any:
    from .factory import load_factory

    return as_rater(load_factory(spec), name=spec)


_FACTORY = RaterKind("factory", _factory, example="path/file.py:name, package.module:name")
for _kind in (RaterKind("builtin", _builtin, prefixes=("builtin:",), example="builtin:NAME"),
              RaterKind("http", _http, prefixes=("http:", "https:"),
                        example="http:PATH.toml or an https:// URL"),
              RaterKind("torchscript", _torchscript, suffixes=(".pt", ".ts", ".pth"), claims=_is_torchscript,
                        example="a TorchScript .pt/.ts file"),
              RaterKind("export", _exported, suffixes=(".pt2",), claims=_is_exported,
                        example="a torch.export .pt2 file"),
              RaterKind("onnx", _onnx, suffixes=(".onnx",), example="a .onnx file"),
              _FACTORY):
    register_kind(_kind)
