"""The reference rater auditkit audits and retrains: :class:`OceanRegressor`, its checkpoints and
its training (``python -m auditkit.models.train``). Installed as ``auditkit.models``."""

from .checkpoint import load_checkpoint, save_checkpoint
from .ocean import BACKBONES, POOLINGS, OceanRegressor

__all__ = ["BACKBONES", "POOLINGS", "OceanRegressor", "load_checkpoint", "save_checkpoint"]
