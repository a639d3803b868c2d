"""Which torch device work runs on."""

from __future__ import annotations

import torch

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when this process sees a GPU, else the CPU; ``cuda`` without one is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here (use auto or cpu)")
    return dev
