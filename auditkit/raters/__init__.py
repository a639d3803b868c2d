"""Rater adapters: load a rater of any kind from a spec, or wrap one built in Python.

The contract a rater fulfils (:class:`InputSpec`, :class:`Rater`, ``OCEAN``) lives in
:mod:`auditkit.contract` and is re-exported here, where users look for it.
"""

from auditkit.contract.rater import OCEAN, AudioSpec, InputSpec, Rater, check_scores, rater_identity

from .loader import RaterKind, as_rater, kinds, load_rater, rebase_spec, register_kind, resolve_kind
from .torchscript import TorchRater, save_exported, save_torchscript
from .travel import RaterSource, source_of

__all__ = ["OCEAN", "AudioSpec", "InputSpec", "Rater", "RaterKind", "RaterSource", "TorchRater", "as_rater",
           "check_scores", "kinds", "load_rater", "rater_identity", "rebase_spec", "register_kind", "resolve_kind",
           "save_exported", "save_torchscript", "source_of"]
