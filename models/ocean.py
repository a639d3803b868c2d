"""``OceanRegressor``: a torchvision image backbone applied per frame, features pooled over time
(mean, or learned attention over frames), five sigmoid outputs in [0, 1]. With ``audio`` it also
listens: a log-mel spectrogram of the clip's sound through a small CNN (:mod:`.audio`), its
features joined to the picture's before the head (late fusion).

Random initialisation by default; a weights file the user provides (an ImageNet state dict for
the backbone, say) can be loaded — nothing is downloaded. On CUDA it runs channels_last under
autocast. It is itself a rater: it carries ``trait_names`` and ``input``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from auditkit.contract.errors import ConfigError, RaterError
from auditkit.contract.params import OneOf, check
from auditkit.contract.rater import OCEAN, AudioSpec, InputSpec

from .weights import safe_load

BACKBONES = ("resnet18", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0")
POOLINGS = ("mean", "attention")
# One rule each, read by the model and by the training settings (models.train.TrainConfig).
MODEL_RULES = {"backbone": OneOf(BACKBONES), "pooling": OneOf(POOLINGS)}


def check_model(name: str, value: str, label: str | None = None) -> str:
    """``value`` of the model setting ``name``, or a ValueError naming it (``label``: the flag)."""
    try:
        return check(name, value, MODEL_RULES[name], where="", label=(lambda _k: label) if label else None)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def make_backbone(name: str) -> tuple[nn.Module, int]:
    """A torchvision backbone with its classifier removed, and its feature width."""
    import torchvision.models as tvm

    check_model("backbone", name)
    model = getattr(tvm, name)(weights=None)
    if name == "resnet18":
        dim = model.fc.in_features
        model.fc = nn.Identity()
    else:  # the first linear layer of the classifier reads the pooled features
        dim = next(m for m in model.classifier if isinstance(m, nn.Linear)).in_features
        model.classifier = nn.Identity()
    return model, dim


class OceanRegressor(nn.Module):
    def __init__(self, backbone: str = "resnet18", *, pooling: str = "mean",
                 traits: Sequence[str] = OCEAN, size: int = 112, frames: int = 8,
                 weights: str | Path | None = None, dropout: float = 0.2,
                 compile: bool = False, crop: str = "full",
                 audio: AudioSpec | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        check_model("pooling", pooling)
        hears = AudioSpec.from_mapping(audio) if isinstance(audio, Mapping) else audio
        self.config = {"backbone": backbone, "pooling": pooling, "traits": list(traits),
                       "size": int(size), "frames": int(frames), "dropout": float(dropout), "crop": crop,
                       "audio": hears.to_dict() if hears is not None else None}
        self.trait_names = tuple(traits)
        # A model trained on face crops (models.train --face-crop) is audited on the same crops.
        self.input = InputSpec(size=(size, size), frames=frames, crop=crop, audio=hears)
        self.backbone, dim = make_backbone(backbone)
        if weights is not None:
            self.load_backbone_weights(weights)
        self.attention = nn.Linear(dim, 1) if pooling == "attention" else None
        self.ears = None
        if hears is not None:
            from .audio import AudioNet

            self.ears = AudioNet(hears.sample_rate)
            dim += self.ears.dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, len(self.trait_names)))
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self._features = torch.compile(self.backbone) if compile else self.backbone

    def load_backbone_weights(self, path: str | Path) -> None:
        """Load a backbone state dict from a file the user provides (safe loader only)."""
        path = Path(path)
        if not path.is_file():
            raise RaterError(f"{path}: backbone weights file does not exist")
        state = safe_load(path, what="weights file")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in state.items()):
            raise RaterError(f"{path}: not a plain state dict (a table of parameter names to tensors)")
        # Classifier weights of an ImageNet file have no place here; everything else must fit.
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
        missing, unexpected = self.backbone.load_state_dict(state, strict=False)
        if unexpected or missing:
            raise RaterError(f"{path}: does not fit backbone {self.config['backbone']} "
                             f"(missing {len(missing)}, unexpected {len(unexpected)} keys)")

    def forward(self, x: torch.Tensor, audio: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x``: float ``[B, T, 3, H, W]`` RGB in [0, 1], and for a model that listens ``audio``
        float ``[B, C, S]`` in [-1, 1] → ``[B, K]`` scores in [0, 1]."""
        b, t = x.shape[:2]
        frames = ((x.reshape(b * t, *x.shape[2:]) - self.mean) / self.std)
        if x.is_cuda:
            frames = frames.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                feats = self._features(frames)
            feats = feats.float()
        else:
            feats = self._features(frames)
        feats = feats.reshape(b, t, -1)
        if self.attention is not None:
            weights = torch.softmax(self.attention(feats), dim=1)
            pooled = (weights * feats).sum(dim=1)
        else:
            pooled = feats.mean(dim=1)
        ears = self.ears
        if ears is not None:
            if audio is None:
                raise ValueError("this OceanRegressor listens: call it with (frames, audio)")
            pooled = torch.cat([pooled, ears(audio)], dim=1)
        return torch.sigmoid(self.head(pooled))
