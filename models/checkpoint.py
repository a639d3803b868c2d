"""Training checkpoints of :class:`OceanRegressor`: weights plus what a later reader needs —
architecture, traits, input size and frames, the augmentation recipe, the data's hash, metrics.

Saved with ``torch.save`` and read only with ``torch.load(weights_only=True)``: a checkpoint is
tensors, dicts, lists, strings and numbers. A file that would need anything else to load (code,
custom classes) is refused, never executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from auditkit.contract.errors import RaterError
from auditkit.contract.rater import file_hash
from auditkit.raters import RaterKind, TorchRater

from .ocean import OceanRegressor
from .weights import safe_load

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
                           frames=config.pop("frames"), dropout=config.pop("dropout", 0.2),
                           crop=config.pop("crop", "full"), audio=config.pop("audio", None))
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise RaterError(f"{path}: weights do not fit the recorded architecture ({str(exc)[:160]})") from None
    return model.eval(), dict(data.get("metadata", {}))


def _load_rater(spec: str, device: torch.device) -> TorchRater:
    model, _ = load_checkpoint(spec)
    return TorchRater(model, model.trait_names, model.input, name=spec, identity=file_hash(spec))


# Registered through the ``auditkit.raters`` entry point (pyproject.toml): the audit's core finds
# this kind without importing the models package. TorchScript files with the same suffixes are
# claimed first by the TorchScript kind.
RATER_KIND = RaterKind("checkpoint", _load_rater, suffixes=(".pt", ".pth", ".ckpt"),
                       example="a training checkpoint (.pt/.pth/.ckpt)")
