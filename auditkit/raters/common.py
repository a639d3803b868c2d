"""Small pieces every rater adapter shares: metadata parsing and one-line error text."""

from __future__ import annotations

import json
from typing import Any

from auditkit.contract.errors import RaterError

METADATA_NAME = "auditkit.json"  # TorchScript extra file / ONNX metadata_props key holding the input spec


def parse_metadata(raw: str | bytes | None, *, where: str) -> dict[str, Any]:
    """The JSON object a model file carries about its input (``size``, ``frames``, ...)."""
    if raw in (None, b"", ""):
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RaterError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RaterError(f"{where}: must be a JSON object")
    return data


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
