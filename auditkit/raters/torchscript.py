"""PyTorch raters: an ``nn.Module`` in memory, or a TorchScript file with its metadata."""

from __future__ import annotations

import contextlib
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

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
        if isinstance(self.module, nn.Module):
            self.module = self.module.to(self.device)
        return self

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(self.device)).float()


def quiet_jit() -> contextlib.ExitStack:
    """torch >= 2.9 marks TorchScript deprecated; it still runs, and users' .pt raters use it."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
    return stack


def save_torchscript(module: nn.Module, path: str | Path, *, trait_names: Sequence[str] = OCEAN,
                     input: InputSpec | None = None) -> Path:
    """Script ``module`` and save it with the metadata auditkit reads back."""
    path = Path(path)
    spec = input or InputSpec()
    meta = {**spec.to_dict(), "trait_names": list(trait_names)}
    with quiet_jit():
        scripted = torch.jit.script(module.eval())
        torch.jit.save(scripted, str(path), _extra_files={METADATA_NAME: json.dumps(meta)})
    return path


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
