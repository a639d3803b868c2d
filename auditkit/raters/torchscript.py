"""PyTorch raters: an ``nn.Module`` in memory, a TorchScript file or a torch.export
ExportedProgram (``.pt2``), each file with its metadata (``auditkit.json``) inside."""

from __future__ import annotations

import contextlib
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from auditkit.contract.errors import RaterError
from auditkit.contract.rater import OCEAN, InputSpec, file_hash, module_hash

from .common import METADATA_NAME, first_line, parse_metadata


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
            self.identity = module_hash(self.module)

    def to(self, device: torch.device | str) -> "TorchRater":
        self.device = torch.device(device)
        if isinstance(self.module, (nn.Module, _Exported)):
            self.module = self.module.to(self.device)
        return self

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        if audio is None:
            return self.module(x.to(self.device)).float()
        return self.module(x.to(self.device), audio.to(self.device)).float()


def quiet_jit() -> contextlib.ExitStack:
    """torch >= 2.9 marks TorchScript deprecated; it still runs, and users' .pt raters use it."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
    return stack


def _metadata(trait_names: Sequence[str], spec: InputSpec) -> str:
    return json.dumps({**spec.to_dict(), "trait_names": list(trait_names)})


def save_torchscript(module: nn.Module, path: str | Path, *, trait_names: Sequence[str] = OCEAN,
                     input: InputSpec | None = None) -> Path:
    """Script ``module`` and save it with the metadata auditkit reads back (a module that listens
    takes ``forward(frames, audio)`` and says so in ``input.audio``)."""
    path = Path(path)
    meta = _metadata(trait_names, input or InputSpec())
    with quiet_jit():
        scripted = torch.jit.script(module.eval())
        torch.jit.save(scripted, str(path), _extra_files={METADATA_NAME: meta})
    return path


def save_exported(module: nn.Module, path: str | Path, *, trait_names: Sequence[str] = OCEAN,
                  input: InputSpec | None = None) -> Path:
    """Export ``module`` with ``torch.export`` (the batch dimension dynamic, and the sound's length
    too when it is the whole clip's) and save the ``.pt2`` archive with its metadata inside."""
    from torch.export import Dim, export

    path = Path(path)
    spec = input or InputSpec()
    batch = Dim("batch", min=1, max=4096)
    frames = torch.rand(2, spec.frames, 3, *spec.size)
    args: tuple[torch.Tensor, ...] = (frames,)
    shapes: tuple[dict[int, Any], ...] = ({0: batch},)
    if spec.audio is not None:
        audio = spec.audio
        length = audio.samples(audio.seconds if audio.seconds is not None else 2.0)
        args += (torch.rand(2, audio.channels, length) * 2 - 1,)
        shapes += ({0: batch} if audio.seconds is not None
                   else {0: batch, 2: Dim("samples", min=audio.sample_rate // 10, max=3600 * audio.sample_rate)},)
    program = export(module.eval(), args, dynamic_shapes=shapes)
    torch.export.save(program, str(path), extra_files={METADATA_NAME: _metadata(trait_names, spec)})
    return path


def is_exported(path: str | Path) -> bool:
    """torch.export archives hold a serialised program (``serialized_exported_program.json``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("serialized_exported_program.json") or n.endswith("models/model.json")
                       for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_exported(path: Path) -> TorchRater:
    extra = {METADATA_NAME: ""}
    try:
        program = torch.export.load(str(path), extra_files=extra)
    except Exception as exc:  # torch raises several kinds for files that are not ExportedPrograms
        raise RaterError(f"{path}: not a torch.export .pt2 file ({first_line(exc)})") from None
    info = parse_metadata(extra[METADATA_NAME], where=f"{path} extra file {METADATA_NAME}")
    spec = InputSpec.from_mapping({k: v for k, v in info.items() if k != "trait_names"}, where=str(path))
    listens = len(program.call_spec.in_spec.children()[0].children()) if program.call_spec.in_spec else 0
    if spec.listens != (listens == 2):
        raise RaterError(f"{path}: the program takes {listens} input(s) but its {METADATA_NAME} "
                         + ("declares audio" if spec.listens else "declares no audio")
                         + "; a rater that listens takes (frames, audio) and states input.audio")
    return TorchRater(_Exported(program), tuple(info.get("trait_names", OCEAN)), spec, name=str(path),
                      identity=file_hash(path))


class _Exported:
    """An ExportedProgram as a callable. Its module cannot be put in eval mode (the mode it was
    exported in is baked into the graph) and moves to a device through torch.export's own pass."""

    def __init__(self, program: Any) -> None:
        self.program = program
        self.call = program.module()

    def to(self, device: torch.device) -> "_Exported":
        if device.type != "cpu":
            from torch.export.passes import move_to_device_pass

            self.call = move_to_device_pass(self.program, device).module()
        return self

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        return self.call(*args)


def is_torchscript(path: str | Path) -> bool:
    """TorchScript archives carry compiled code; ``torch.save`` archives only data."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_torchscript(path: Path) -> TorchRater:
    extra = {METADATA_NAME: ""}
    try:
        with quiet_jit():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError and friends for non-TorchScript files
        raise RaterError(f"{path}: not a TorchScript file ({first_line(exc)})") from None
    info = parse_metadata(extra[METADATA_NAME], where=f"{path} extra file {METADATA_NAME}")
    spec = InputSpec.from_mapping({k: v for k, v in info.items() if k != "trait_names"}, where=str(path))
    return TorchRater(module, tuple(info.get("trait_names", OCEAN)), spec, name=str(path),
                      identity=file_hash(path))
