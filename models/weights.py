"""The one loader of weight files: ``torch.load(weights_only=True)``, every failure one line."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from auditkit.contract.errors import RaterError, first_line


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
        raise RaterError(f"{path}: not a readable {what} ({first_line(exc, 160)})") from None
