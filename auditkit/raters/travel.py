"""How a rater reaches another process (a Ray actor, perhaps on another machine).

A loaded rater is never pickled as it is: TorchScript modules and onnxruntime sessions cannot be,
and a pickled model would be whatever the driver happened to hold. What travels is a
:class:`RaterSource` — the spec it was loaded from, its kind, and the bytes of the file the spec
names (a model file, a factory's ``.py``), so that a node need not share the driver's disk — and
the other process loads it again through the same rater kinds. A rater that lives only in memory
travels in the form that works for it: a module (scripted, or scriptable) as its TorchScript
archive, anything else by value (Ray pickles it; its class must then be importable on the
workers), or it is refused with one line before any work starts.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from auditkit.contract.errors import RaterError

from .common import METADATA_NAME, first_line


@dataclass(frozen=True)
class RaterSource:
    """Everything another process needs to load the same rater: ``spec`` as the user gave it,
    the rater ``kind``, and — for a spec that names a file — the file's name and bytes. ``env``
    names the environment variables the rater reads (an HTTP rater's credential); their values
    travel apart from this object (a Ray runtime environment), never inside it."""

    spec: str
    kind: str
    filename: str | None = None
    payload: bytes | None = field(default=None, repr=False)
    attr: str | None = None          # a factory's ``name`` after the ``:``
    env: tuple[str, ...] = ()
    identity: str = ""               # for a model that existed only in memory: its hash there

    def load(self, device: str | torch.device = "cpu") -> Any:
        from .loader import load_rater

        if self.payload is None:
            rater = load_rater(self.spec, device=device)
        else:
            # The copy lives only while it loads: every kind reads its file whole when loaded (a
            # factory file is imported), and a worker that loads a rater per audit must not leave
            # a copy of the user's weights behind each time.
            folder = Path(tempfile.mkdtemp(prefix="auditkit-rater-"))
            try:
                path = folder / (self.filename or "rater")
                path.write_bytes(self.payload)
                rater = load_rater(f"{path}:{self.attr}" if self.attr else str(path), device=device)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        try:
            rater.name = self.spec  # what the user called it, not the copy's temporary path
            if self.identity:
                rater.identity = self.identity
        except AttributeError:
            pass
        return rater


def source_of(spec: Any, rater: Any) -> RaterSource | Any:
    """What to send to another process for a rater loaded here from ``spec`` (a spec string, or
    the rater object itself): a :class:`RaterSource`, or the object when it travels by value.
    Raises :class:`RaterError` for a rater that can only live in this process."""
    from .loader import resolve_kind

    text = spec if isinstance(spec, str) else getattr(rater, "source", None)
    if isinstance(text, str):
        kind = resolve_kind(text)
        env = tuple(name for name in (getattr(getattr(rater, "endpoint", None), "token_env", None),) if name)
        target, colon, attr = text.rpartition(":")
        if kind.name == "factory" and target.endswith(".py"):
            path = Path(target)
            return RaterSource(text, kind.name, path.name, path.read_bytes(), attr, env)
        if kind.suffixes and Path(text).is_file():
            return RaterSource(text, kind.name, Path(text).name, Path(text).read_bytes(), None, env)
        return RaterSource(text, kind.name, env=env)
    module = getattr(rater, "module", None)
    if isinstance(module, torch.jit.ScriptModule):
        return _scripted(rater, module)
    if isinstance(module, torch.nn.Module):
        # Scripted, an eager module travels without its class: a module defined in a test file or
        # a notebook cannot be imported on a Ray worker, its TorchScript archive can be loaded.
        from .torchscript import quiet_jit

        try:
            with quiet_jit():
                scripted = torch.jit.script(module)
        except Exception:  # not scriptable: it travels by value below, if it can
            pass
        else:
            return _scripted(rater, scripted)
    try:
        import cloudpickle
    except ImportError:  # Ray brings it; without Ray nothing travels anyway
        from ray import cloudpickle  # type: ignore[no-redef]
    try:
        cloudpickle.dumps(rater)
    except Exception as exc:
        name = getattr(rater, "name", type(rater).__name__)
        raise RaterError(f"rater {name} lives only in this process and cannot be sent to Ray workers "
                         f"({type(exc).__name__}: {first_line(exc)}); save it to a file (e.g. "
                         "auditkit.raters.save_torchscript) and pass its path, or use --executor local") from None
    return rater


def _scripted(rater: Any, module: torch.jit.ScriptModule) -> RaterSource:
    """A scripted module held in memory travels as its TorchScript archive, metadata included."""
    from .torchscript import quiet_jit

    meta: Mapping[str, Any] = {**rater.input.to_dict(), "trait_names": list(rater.trait_names)}
    buffer = io.BytesIO()
    with quiet_jit():
        torch.jit.save(module, buffer, _extra_files={METADATA_NAME: json.dumps(meta)})
    return RaterSource(getattr(rater, "name", "module"), "torchscript", "rater.pt", buffer.getvalue(),
                       identity=getattr(rater, "identity", ""))
