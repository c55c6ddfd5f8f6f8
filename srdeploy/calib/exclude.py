"""``quant.exclude``: convs the user keeps in float, named as ModelOpt / ONNX Runtime users name them.

An entry is a module path (``body.3.body.0``; a prefix such as ``body.3`` takes every conv under it),
a weight name (``body.3.body.0.weight``), an ONNX node name of the exported graph
(``body.3.body.0:Conv``), or an op type (``op:Conv``). A matched conv is marked float in the plan
(``LayerInfo.quantized`` false, ``reason`` naming the entry), so no step quantizes it: no weight
grid, no input site, no output site, and a residual skip whose branch it computes stays float too.
Names that match nothing are an error listing the closest names of the model.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace

from srdeploy.errors import RecipeError
from srdeploy.passes.graph_info import GraphInfo
from srdeploy.quant.plan import LayerInfo

OP_PREFIX = "op:"


def _node(layer: LayerInfo, graph: GraphInfo) -> str:
    conv = graph.convs.get(layer.weight)
    return conv.node if conv is not None else f"{layer.module}:Conv"


def _matches(entry: str, layer: LayerInfo, graph: GraphInfo) -> bool:
    node = _node(layer, graph)
    if entry.startswith(OP_PREFIX):
        return graph.op_types.get(node, "Conv") == entry[len(OP_PREFIX) :]
    return entry in (layer.weight, layer.module, node) or layer.module.startswith(entry + ".")


def _unknown(entry: str, layers: Sequence[LayerInfo], graph: GraphInfo) -> RecipeError:
    if entry.startswith(OP_PREFIX):
        ops = sorted({OP_PREFIX + graph.op_types.get(_node(x, graph), "Conv") for x in layers})
        return RecipeError(f"quant.exclude: no layer of this model has op type {entry!r}", f"use one of {ops}")
    names = [n for x in layers for n in (x.module, _node(x, graph))]
    close = difflib.get_close_matches(entry, names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"module paths here look like {layers[0].module}"
    problem = f"quant.exclude: {entry!r} names no conv of this model"
    return RecipeError(problem, f"{hint} (`srdeploy inspect` lists them)")


def apply_exclusions(layers: Sequence[LayerInfo], exclude: Sequence[str], graph: GraphInfo) -> tuple[LayerInfo, ...]:
    """``layers`` with every conv matched by an entry of ``exclude`` kept in float, its reason saying why."""
    if not exclude:
        return tuple(layers)
    first: dict[str, str] = {}
    for entry in exclude:
        hits = [x.weight for x in layers if _matches(entry, x, graph)]
        if not hits:
            raise _unknown(entry, layers, graph)
        for w in hits:
            first.setdefault(w, entry)
    out = tuple(
        replace(x, quantized=False, reason=f"excluded by quant.exclude ({first[x.weight]!r})")
        if x.quantized and x.weight in first
        else x
        for x in layers
    )
    if not any(x.quantized for x in out):
        raise RecipeError(
            f"quant.exclude {list(exclude)} leaves no conv quantized", "exclude fewer layers (or build fp32 only)"
        )
    return out
