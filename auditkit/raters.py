"""Raters: anything that scores the Big Five from a batch of clips.

The contract: a rater has ``trait_names`` and ``input`` (an :class:`InputSpec`) and is called
with float32 ``[B, T, 3, H, W]`` RGB in [0, 1] (already sampled to ``input.frames`` frames and
resized to ``input.size``), returning ``[B, K]`` scores, K = ``len(trait_names)``.

``load_rater(spec)`` resolves a spec string:

* ``builtin:appearance`` / ``builtin:constant`` — reference raters shipped with auditkit;
* ``path/model.pt`` or ``.ts`` — a TorchScript file (metadata in the extra file ``auditkit.json``);
* ``path/model.pt``, ``.pth`` or ``.ckpt`` holding a ``models.train`` checkpoint;
* ``path/model.onnx`` — an ONNX model run by onnxruntime (metadata in ``metadata_props``);
* ``path/file.py:name`` or ``package.module:name`` — a factory returning a rater or an ``nn.Module``;
* ``http:PATH.toml`` or ``https://host/path`` — a vendor's HTTP endpoint (see ``auditkit.http_rater``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from torch import nn

from .errors import RaterError

OCEAN = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
METADATA_NAME = "auditkit.json"


@dataclass(frozen=True)
class InputSpec:
    """What a rater wants to see: ``size`` (height, width), ``frames`` per clip and ``crop``
    (``"full"`` frame; face crops arrive with the annotation cache)."""

    size: tuple[int, int] = (224, 224)
    frames: int = 8
    crop: str = "full"

    def __post_init__(self) -> None:
        size = self.size
        if isinstance(size, int):
            size = (size, size)
        size = tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 8:
            raise RaterError(f"rater input size must be (height, width) of at least 8, got {self.size!r}")
        object.__setattr__(self, "size", size)
        if int(self.frames) < 1:
            raise RaterError(f"rater input frames must be >= 1, got {self.frames!r}")
        object.__setattr__(self, "frames", int(self.frames))
        if self.crop != "full":
            raise RaterError(f"rater input crop {self.crop!r} is not supported; use 'full'")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str) -> "InputSpec":
        unknown = set(data) - {"size", "frames", "crop", "trait_names"}
        if unknown:
            raise RaterError(f"{where}: unknown input metadata {sorted(unknown)}; "
                             "allowed: size, frames, crop, trait_names")
        kwargs = {k: data[k] for k in ("size", "frames", "crop") if k in data}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError, RaterError) as exc:
            raise RaterError(f"{where}: bad input metadata ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "frames": self.frames, "crop": self.crop}


@runtime_checkable
class Rater(Protocol):
    trait_names: tuple[str, ...]
    input: InputSpec

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass
class TorchRater:
    """Wraps an ``nn.Module`` (eager or TorchScript). Runs in eval mode without gradients."""

    module: Callable[[torch.Tensor], torch.Tensor]
    trait_names: tuple[str, ...] = OCEAN
    input: InputSpec = field(default_factory=InputSpec)
    name: str = "module"
    identity: str = ""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self.trait_names = tuple(self.trait_names)
        if isinstance(self.module, nn.Module):
            self.module = self.module.eval()
        if not self.identity:
            self.identity = _module_hash(self.module)

    def to(self, device: torch.device | str) -> "TorchRater":
        self.device = torch.device(device)
        if isinstance(self.module, nn.Module):
            self.module = self.module.to(self.device)
        return self

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(self.device)).float()


class OnnxRater:
    """An ONNX model run by onnxruntime on the CPU (or CUDA when its provider is installed)."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise RaterError(f"{path}: not a loadable ONNX model ({_first_line(exc)})") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map or {})
        info = _parse_metadata(meta.get("auditkit"), where=f"{path} metadata_props 'auditkit'")
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise RaterError(f"{path}: ONNX raters take one input [B, T, 3, H, W]; this one has {len(inputs)}")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        if len(shape) != 5:
            raise RaterError(f"{path}: ONNX input {self.input_name!r} has shape {shape}; expected [B, T, 3, H, W]")
        # Fixed dimensions in the graph are the truth; metadata fills in dynamic ones.
        if isinstance(shape[1], int):
            info.setdefault("frames", shape[1])
        if isinstance(shape[3], int) and isinstance(shape[4], int):
            info.setdefault("size", [shape[3], shape[4]])
        self.input = InputSpec.from_mapping({k: v for k, v in info.items() if k != "trait_names"},
                                            where=str(path))
        self.trait_names = tuple(info.get("trait_names", OCEAN))
        self.name = str(path)
        self.identity = _file_hash(path)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def _parse_metadata(raw: str | bytes | None, *, where: str) -> dict[str, Any]:
    if raw in (None, b"", ""):
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RaterError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RaterError(f"{where}: must be a JSON object")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _module_hash(module: Any) -> str:
    h = hashlib.sha256(type(module).__qualname__.encode())
    if isinstance(module, nn.Module):
        for key, tensor in sorted(module.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()


def save_torchscript(module: nn.Module, path: str | Path, *, trait_names: Sequence[str] = OCEAN,
                     input: InputSpec | None = None) -> Path:
    """Script ``module`` and save it with the metadata auditkit reads back."""
    path = Path(path)
    spec = input or InputSpec()
    meta = {**spec.to_dict(), "trait_names": list(trait_names)}
    with _quiet_jit():
        scripted = torch.jit.script(module.eval())
        torch.jit.save(scripted, str(path), _extra_files={METADATA_NAME: json.dumps(meta)})
    return path


def _quiet_jit():
    # torch >= 2.9 marks TorchScript deprecated; it still runs, and users' .pt raters use it.
    import contextlib
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
    return stack


def _load_torchscript(path: Path) -> TorchRater:
    extra = {METADATA_NAME: ""}
    try:
        with _quiet_jit():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError and friends for non-TorchScript files
        raise RaterError(f"{path}: not a TorchScript file ({_first_line(exc)})") from None
    info = _parse_metadata(extra[METADATA_NAME], where=f"{path} extra file {METADATA_NAME}")
    spec = InputSpec.from_mapping({k: v for k, v in info.items() if k != "trait_names"}, where=str(path))
    return TorchRater(module, tuple(info.get("trait_names", OCEAN)), spec, name=str(path),
                      identity=_file_hash(path))


def _is_torchscript(path: Path) -> bool:
    from models.checkpoint import is_torchscript

    return is_torchscript(path)


def _load_checkpoint(path: Path) -> TorchRater:
    """A training checkpoint of ``models.train`` (read with ``weights_only=True``)."""
    from models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(path)
    return TorchRater(model, model.trait_names, model.input, name=str(path), identity=_file_hash(path))


def _load_factory(spec: str) -> Any:
    target, _, attr = spec.rpartition(":")
    if not target or not attr.isidentifier():
        raise RaterError(f"rater {spec!r}: expected 'path/file.py:name' or 'package.module:name'")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise RaterError(f"rater {spec!r}: file {path} does not exist")
        mod_name = f"_auditkit_rater_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise RaterError(f"rater {spec!r}: {path} cannot be imported")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[mod_name]
            raise RaterError(f"rater {spec!r}: importing {path} failed: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise RaterError(f"rater {spec!r}: cannot import module {target!r} ({_first_line(exc)})") from None
    if not hasattr(module, attr):
        raise RaterError(f"rater {spec!r}: {target} has no attribute {attr!r}")
    obj = getattr(module, attr)
    if callable(obj) and not isinstance(obj, nn.Module) and not hasattr(obj, "trait_names"):
        try:
            obj = obj()
        except Exception as exc:
            raise RaterError(f"rater {spec!r}: calling {attr}() failed: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None
    return obj


def as_rater(obj: Any, *, name: str = "rater") -> Any:
    """Accept a ready rater, or wrap an ``nn.Module`` with default metadata."""
    if isinstance(obj, nn.Module):
        # A module that declares its traits and input (models.OceanRegressor does) keeps them.
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


def load_rater(spec: str | Any, *, device: str | torch.device = "cpu") -> Any:
    """Resolve a rater spec (see the module docstring) and move it to ``device``."""
    if not isinstance(spec, str):
        rater = as_rater(spec)
    elif spec.startswith("builtin:"):
        from .builtin import BUILTIN

        key = spec.split(":", 1)[1]
        if key not in BUILTIN:
            raise RaterError(f"rater {spec!r}: unknown built-in; choose one of "
                             + ", ".join(f"builtin:{k}" for k in BUILTIN))
        rater = BUILTIN[key]()
    elif spec.startswith(("http:", "https:")):
        from .http_rater import load_http_rater

        rater = load_http_rater(spec)
    else:
        path = Path(spec)
        suffix = path.suffix.lower()
        if suffix in (".pt", ".ts", ".pth", ".ckpt", ".onnx") and ":" not in path.name:
            if path.is_dir():
                raise RaterError(f"rater {spec!r}: is a folder, not a model file")
            if not path.is_file():
                raise RaterError(f"rater {spec!r}: file does not exist")
            if suffix == ".onnx":
                rater = OnnxRater(path, str(device))
            elif suffix == ".ts" or _is_torchscript(path):
                rater = _load_torchscript(path)
            else:
                rater = _load_checkpoint(path)
        elif ":" in spec:
            rater = as_rater(_load_factory(spec), name=spec)
        else:
            raise RaterError(f"rater {spec!r} does not resolve: give builtin:NAME, a .pt/.ts/.onnx "
                             "file, path/file.py:name, package.module:name, http:PATH.toml or an https:// URL")
    if hasattr(rater, "to"):
        rater.to(device)
    if not getattr(rater, "name", None) or rater.name == "module":
        rater.name = spec if isinstance(spec, str) else type(spec).__name__
    return rater


def rater_identity(rater: Any) -> dict[str, Any]:
    """What the audit records about the rater: its spec/name, a hash, traits and input."""
    ident = getattr(rater, "identity", "") or _module_hash(getattr(rater, "module", rater))
    return {"spec": getattr(rater, "name", type(rater).__name__), "hash": ident,
            "traits": list(rater.trait_names), "input": rater.input.to_dict()}


def check_scores(out: Any, rater: Any, clip_ids: Sequence[str]) -> torch.Tensor:
    """Validate a rater's output for a batch; the error names the rater and the clips."""
    name = getattr(rater, "name", type(rater).__name__)
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(np.asarray(out, dtype=np.float32))
        except (TypeError, ValueError):
            raise RaterError(f"rater {name} returned {type(out).__name__} for clip(s) "
                             f"{', '.join(clip_ids)}; expected a [B, K] tensor") from None
    expected = (len(clip_ids), len(rater.trait_names))
    if tuple(out.shape) != expected:
        raise RaterError(f"rater {name} returned shape {tuple(out.shape)} for clip(s) "
                         f"{', '.join(clip_ids)}; expected {expected} (batch, traits)")
    out = out.detach().float().cpu()
    bad = ~torch.isfinite(out)
    if bad.any():
        rows = sorted({int(i) for i in bad.nonzero()[:, 0]})
        raise RaterError(f"rater {name} returned NaN or inf for clip(s) "
                         f"{', '.join(clip_ids[i] for i in rows)}")
    return out
