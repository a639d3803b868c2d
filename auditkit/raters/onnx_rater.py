"""ONNX raters, run by onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from auditkit.contract.errors import RaterError
from auditkit.contract.rater import OCEAN, InputSpec, file_hash

from .common import first_line, parse_metadata

METADATA_KEY = "auditkit"  # the model's metadata_props entry holding the input spec (JSON)


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
            raise RaterError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map or {})
        info = parse_metadata(meta.get(METADATA_KEY), where=f"{path} metadata_props {METADATA_KEY!r}")
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
        self.identity = file_hash(path)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))
