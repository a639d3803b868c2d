"""Training checkpoints of :class:`OceanRegressor`: weights plus what a later reader needs —
architecture, traits, input size and frames, the augmentation recipe, the data's hash, metrics.

Saved with ``torch.save`` and read only with ``torch.load(weights_only=True)``: a checkpoint is
tensors, dicts, lists, strings and numbers. A file that would need anything else to load (code,
custom classes) is refused, never executed.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from auditkit.errors import RaterError

from .ocean import OceanRegressor

FORMAT = "auditkit.ocean-checkpoint"
VERSION = 1


def save_checkpoint(model: OceanRegressor, path: str | Path, *,
                    metadata: Mapping[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "version": VERSION, "config": dict(model.config),
                "state_dict": state, "metadata": dict(metadata or {})}, path)
    return path


def is_torchscript(path: str | Path) -> bool:
    """TorchScript archives carry compiled code; ``torch.save`` archives only data."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def safe_load(path: Path, *, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)``, every failure one :class:`RaterError` line. Torch's own
    message opens by suggesting ``weights_only=False``, which is exactly what must not be done
    with a file that asks for code, so it is replaced by a plain refusal."""
    try:
        with warnings.catch_warnings():  # a pickle-protocol warning would be a second line on stderr
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            culprit = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln or "global" in ln), "")
            raise RaterError(f"{path}: refused — loading it would import or run code, and a "
                             f"{what} must be plain data ({culprit[:160]})") from None
        raise RaterError(f"{path}: not a readable {what} (not a torch.save file)") from None
    except Exception as exc:  # not a torch file at all
        raise RaterError(f"{path}: not a readable {what} ({str(exc).splitlines()[0][:160]})") from None


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu"
                    ) -> tuple[OceanRegressor, dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise RaterError(f"{path}: checkpoint does not exist")
    data = safe_load(path, map_location=map_location)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RaterError(f"{path}: not an auditkit OceanRegressor checkpoint (no format {FORMAT!r})")
    if data.get("version", 0) > VERSION:
        raise RaterError(f"{path}: checkpoint version {data.get('version')} is newer than this auditkit reads")
    config = dict(data["config"])
    model = OceanRegressor(config.pop("backbone"), pooling=config.pop("pooling"),
                           traits=config.pop("traits"), size=config.pop("size"),
                           frames=config.pop("frames"), dropout=config.pop("dropout", 0.2))
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise RaterError(f"{path}: weights do not fit the recorded architecture ({str(exc)[:160]})") from None
    return model.eval(), dict(data.get("metadata", {}))
