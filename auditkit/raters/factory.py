"""Raters built by the user's own Python: ``path/file.py:name`` or ``package.module:name``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from torch import nn

from auditkit.contract.errors import RaterError

from .common import first_line


def load_factory(spec: str) -> Any:
    """The object ``spec`` names; a callable that is not yet a rater is called once."""
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
                             f"{type(exc).__name__}: {first_line(exc)}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise RaterError(f"rater {spec!r}: cannot import module {target!r} ({first_line(exc)})") from None
    if not hasattr(module, attr):
        raise RaterError(f"rater {spec!r}: {target} has no attribute {attr!r}")
    obj = getattr(module, attr)
    if callable(obj) and not isinstance(obj, nn.Module) and not hasattr(obj, "trait_names"):
        try:
            obj = obj()
        except Exception as exc:
            raise RaterError(f"rater {spec!r}: calling {attr}() failed: "
                             f"{type(exc).__name__}: {first_line(exc)}") from None
    return obj
