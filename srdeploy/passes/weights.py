"""Set the deployed float parameters (apply_plan: structure, masks, re-fitted weights and biases,
equalization) as the graph's initializers, matched by parameter name. Running it twice changes nothing."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx_graphsurgeon as gs

from srdeploy.errors import RewriteError
from srdeploy.passes.base import PassResult


def set_float_weights(graph: gs.Graph, params: Mapping[str, np.ndarray]) -> PassResult:
    result = PassResult("set_float_weights")
    constants = {t.name: t for t in graph.tensors().values() if isinstance(t, gs.Constant)}
    for name in sorted(params):
        t = constants.get(name)
        if t is None:
            continue  # parameters the exporter folded away (e.g. mean-shift constants) or buffers
        value = np.asarray(params[name], dtype=np.float32)
        if t.values.dtype != np.float32:
            result.skip(name, f"initializer is {t.values.dtype}, not float32 (already quantized)")
            continue
        if tuple(t.values.shape) != value.shape:
            raise RewriteError(
                f"parameter {name} has shape {value.shape}, the graph's initializer {tuple(t.values.shape)}",
                "the graph was exported from another model (or without the plan's channel pruning)",
            )
        if not np.array_equal(t.values, value):
            t.values = value
            result.note("parameter")
    return result
