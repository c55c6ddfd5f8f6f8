"""Size rules (srdeploy/size_rules.py) of spandrel's architectures, from the loaded module's hyper-parameters.

Measured with spandrel 0.4.2 and torch 2.13.0 (tests/models/test_spandrel_real.py):
- SwinIR, HAT and OmniSR pad H and W to their window inside ``forward``; torch.export keeps H and W
  dynamic but assumes that padding is zero (a guard H % window == 0), so the graph is right only at multiples
  of the window: ``multiple`` = the window (SwinIR: times its pixel-unshuffle), padded outside with the
  network's own mode (reflect for SwinIR and HAT, zeros for OmniSR), so the padded graph computes the
  network's own forward. DAT pads q/k/v inside its attention and that padding stays dynamic in the graph:
  no multiple. All four are padded up to spandrel's minimum of 16.
- SwinIR, HAT and DAT traced with a dynamic batch export, but the graph disagreed with PyTorch by ~1e-3 at
  batch 1 (window reshapes that fold the batch); exported for batch 1 they agree to ~1e-6, so ``batch`` = 1.
- The rest (ESRGAN, Compact, PLKSR, SPAN, ...) take spandrel's own size requirements, any batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from srdeploy.size_rules import SizeRules

WINDOW_MINIMUM = 16  # spandrel's SizeRequirements(minimum=16) of the window networks


def _swinir(hp: Mapping[str, Any]) -> SizeRules:
    unshuffle = int(hp.get("start_unshuffle", 1))
    return SizeRules(multiple=int(hp["window_size"]) * unshuffle, minimum=WINDOW_MINIMUM, batch=1)


def _hat(hp: Mapping[str, Any]) -> SizeRules:
    return SizeRules(multiple=int(hp["window_size"]), minimum=WINDOW_MINIMUM, batch=1)


def _dat(_hp: Mapping[str, Any]) -> SizeRules:
    # DAT zero-pads q, k and v inside its attention, which the graph keeps dynamic: any size >= the minimum
    return SizeRules(minimum=WINDOW_MINIMUM, pad_mode="constant", batch=1)


def _omnisr(hp: Mapping[str, Any]) -> SizeRules:
    return SizeRules(multiple=int(hp["window_size"]), minimum=WINDOW_MINIMUM, pad_mode="constant")


RULES: dict[str, Callable[[Mapping[str, Any]], SizeRules]] = {
    "SwinIR": _swinir,
    "HAT": _hat,
    "DAT": _dat,
    "OmniSR": _omnisr,
}


def spandrel_size_rules(arch_id: str, hyperparameters: Mapping[str, Any], requirements: Any) -> SizeRules:
    """The rules of ``arch_id`` (a spandrel architecture id), combined with spandrel's ``size_requirements``
    (``multiple_of``, ``minimum``) so neither is ever weaker than what spandrel says."""
    own = RULES[arch_id](hyperparameters) if arch_id in RULES else SizeRules()
    multiple = int(getattr(requirements, "multiple_of", 1) or 1)
    minimum = int(getattr(requirements, "minimum", 1) or 1)
    return SizeRules(
        multiple=math.lcm(own.multiple, multiple),
        minimum=max(own.minimum, minimum),
        pad_mode=own.pad_mode,
        batch=own.batch,
    )
