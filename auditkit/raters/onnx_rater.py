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
        if len(inputs) == 2:  # a rater that listens: inputs named for what they carry
            named = {i.name: i for i in inputs}
            if set(named) != {"frames", "audio"}:
                raise RaterError(f"{path}: an ONNX rater with two inputs names them 'frames' [B, T, 3, H, W] and "
                                 f"'audio' [B, C, S]; this one has {', '.join(repr(n) for n in named)}")
            video, sound = named["frames"], named["audio"]
            self._listen(path, info, sound.shape)
        elif len(inputs) == 1:
            video, sound = inputs[0], None
            if "audio" in info:
                raise RaterError(f"{path}: its metadata declares audio but the model has one input; a rater that "
                                 "listens has two, named 'frames' and 'audio'")
        else:
            raise RaterError(f"{path}: ONNX raters take one input [B, T, 3, H, W], or two named 'frames' and "
                             f"'audio' [B, C, S]; this one has {len(inputs)}")
        self.input_name = video.name
        self.audio_name = sound.name if sound is not None else None
        shape = video.shape
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

    @staticmethod
    def _listen(path: Path, info: dict, shape: list) -> None:
        """The audio input's fixed dimensions, checked against (or filling in) the metadata."""
        if len(shape) != 3:
            raise RaterError(f"{path}: ONNX input 'audio' has shape {shape}; expected [B, C, S]")
        audio = info.get("audio")
        if not isinstance(audio, dict) or "sample_rate" not in audio:
            raise RaterError(f"{path}: the model has an 'audio' input but its metadata_props {METADATA_KEY!r} "
                             "states no audio sample_rate (e.g. \"audio\": {\"sample_rate\": 16000})")
        audio = dict(audio)
        if isinstance(shape[1], int):
            audio.setdefault("channels", shape[1])
        if isinstance(shape[2], int):
            audio.setdefault("seconds", shape[2] / audio["sample_rate"])
        info["audio"] = audio

    def __call__(self, x: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        feeds = {self.input_name: x.detach().cpu().numpy().astype(np.float32)}
        if self.audio_name is not None:
            if audio is None:
                raise RaterError(f"{self.name}: this rater listens; call it with (frames, audio)")
            feeds[self.audio_name] = audio.detach().cpu().numpy().astype(np.float32)
        out = self.session.run(None, feeds)[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))
