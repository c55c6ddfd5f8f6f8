"""Did TensorRT build what the plan asked for? Per conv: planned vs built precision and 2:4 sparsity.

Pure (no tensorrt import): it reads IEngineInspector JSON (DETAILED verbosity) and build-log lines.
What the parsing is based on:
- TensorRT 10.x engine JSON: ``{"Layers": [...], "Bindings": [...]}``; a layer has Name, LayerType,
  ParameterType, Inputs/Outputs ``[{"Name", "Location", "Dimensions", "Format/Datatype"}]`` with
  strings such as "Channel major FP16 format where channel % 8 == 0", "Thirty-two wide channel
  vectorized row major Int8 format", "Row major linear FP32", or kgen's "Half"/"Int8"/"Float";
  ``"Weights": {"Type": "Int8", "Count": n}``, HasSparseWeights, TacticName, and Metadata
  "[ONNX Layer: a]\\x1e[ONNX Layer: b]" (NVIDIA/TensorRT tools/experimental/trt-engine-explorer/
  trex/layer.py, activations.py, parser.py). Fused layers are named "a + b + c"; a second profile
  adds " [profile 1]".
- TensorRT 11.x: "Bindings" became "I/O Tensors" and a tensor's "Format/Datatype" is split into
  "Format" and "Datatype" (TensorRT 11 docs, "Migrating IEngineInspector Usage from TensorRT 10.x
  to 11.x"; NVIDIA/trt-samples-for-hackathon-cn cookbook/tensorrt_cookbook/utils_engine.py reads
  both). Without an execution context, dynamic shapes read "N/A due to dynamic shapes": then the
  weights type, then the tactic name decide.
- Build log (INFO): "(Sparsity) Layers eligible for sparse math: A, B + C" and "(Sparsity) TRT
  inference plan picked sparse implementation for layers: ..." (NVIDIA/TensorRT issues 2169, 4054).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from srdeploy.sparsity.nm import is_2of4

if TYPE_CHECKING:
    from srdeploy.quant.plan import NMMask, QuantPlan

_META = re.compile(r"\[ONNX Layer: ([^\]\x1e\x1f]*)\]")
_PROFILE = re.compile(r"\s*\[profile \d+\]\s*$")
_ELIGIBLE = re.compile(r"\(Sparsity\) Layers eligible for sparse math:(.*)$")
_CHOSEN = re.compile(r"\(Sparsity\) TRT inference plan picked sparse implementation for layers:(.*)$")
# Order matters: the first token found names the precision.
_TOKENS = (
    (re.compile(r"\b(Int8|INT8|int8)\b"), "INT8"),
    (re.compile(r"\b(FP8|Fp8|E4M3)\b"), "FP8"),
    (re.compile(r"\b(FP16|Half|HALF|fp16)\b"), "FP16"),
    (re.compile(r"\b(BF16|BFloat16)\b"), "BF16"),
    (re.compile(r"\b(FP32|Float|FLOAT|fp32)\b"), "FP32"),
    (re.compile(r"\b(Int4|INT4)\b"), "INT4"),
)
_TACTIC = (
    (re.compile(r"i8i8|i8f32|i8f16|_i8_|int8|imma"), "INT8"),
    (re.compile(r"e4m3|fp8"), "FP8"),
    (re.compile(r"f16f16|h884|h1688|h16816|hmma|fp16|_f16"), "FP16"),
)
_CONV_TYPES = ("Convolution", "CaskConvolution", "Deconvolution", "CaskDeconvolutionV2", "CaskGemmConvolution")


def layers_from_engine_json(doc: str | Mapping[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    """Layer dicts from ``get_engine_information(JSON)`` text (or already parsed JSON)."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    layers = doc.get("Layers", []) if isinstance(doc, Mapping) else doc
    out = []
    for layer in layers:
        if isinstance(layer, str):
            # get_layer_information() strings, or bare names at LAYER_NAMES_ONLY verbosity.
            layer = json.loads(layer) if layer.lstrip().startswith("{") else {"Name": layer}
        out.append(dict(layer))
    return out


def onnx_nodes(layer: Mapping[str, Any]) -> list[str]:
    """ONNX node names a TensorRT layer came from (Metadata first, then the fused name)."""
    names = [n.strip() for n in _META.findall(str(layer.get("Metadata") or ""))]
    names += [p.strip() for p in _PROFILE.sub("", str(layer.get("Name", ""))).split(" + ")]
    return list(dict.fromkeys(n for n in names if n))


def _token(text: str) -> str | None:
    for pattern, precision in _TOKENS:
        if pattern.search(text):
            return precision
    return None


def tensor_precision(tensor: Mapping[str, Any]) -> str | None:
    for key in ("Datatype", "DataType", "Format/Datatype", "Format"):
        value = tensor.get(key)
        if value and (p := _token(str(value))):
            return p
    return None


def layer_precision(layer: Mapping[str, Any]) -> tuple[str | None, str]:
    """(precision, where it was read): the first input's format, else weights, else the tactic."""
    inputs = layer.get("Inputs") or []
    if inputs and isinstance(inputs[0], Mapping) and (p := tensor_precision(inputs[0])):
        return p, "input format"
    weights = layer.get("Weights")
    if isinstance(weights, Mapping) and (p := _token(str(weights.get("Type", "")))):
        return p, "weights type"
    tactic = str(layer.get("TacticName", "")).lower()
    for pattern, precision in _TACTIC:
        if pattern.search(tactic):
            return precision, "tactic name"
    return None, "unknown"


def parse_sparsity_log(lines: str | Iterable[str]) -> dict[str, list[str]]:
    """{'eligible': [...], 'chosen': [...]}: TensorRT layer names from the build log's sparsity lines."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    found: dict[str, list[str]] = {"eligible": [], "chosen": []}
    for line in lines:
        for key, pattern in (("eligible", _ELIGIBLE), ("chosen", _CHOSEN)):
            m = pattern.search(line)
            if m:
                found[key] += [x.strip() for x in m.group(1).split(",") if x.strip()]
    return found


def _in_log(nodes: Sequence[str], entries: Iterable[str]) -> bool:
    wanted = set(nodes)
    return any(wanted & {p.strip() for p in _PROFILE.sub("", e).split(" + ")} for e in entries)


def _index(layers: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """ONNX node name -> engine layer; a convolution layer wins over others naming the same node."""
    index: dict[str, Mapping[str, Any]] = {}
    for layer in layers:
        name = str(layer.get("Name", ""))
        if layer.get("LayerType") == "Reformat" or name.startswith("Reformatting"):
            continue
        conv = layer.get("ParameterType") in _CONV_TYPES or layer.get("LayerType") in _CONV_TYPES
        for node in onnx_nodes(layer):
            old = index.get(node)
            if old is None or (conv and old.get("ParameterType") not in _CONV_TYPES):
                index[node] = layer
    return index


def planned_sparsity(mask: NMMask | None) -> tuple[str, bool]:
    """(label, 2:4?): whether TensorRT can run the conv's kept weights on sparse tensor cores
    (sparsity.nm.is_2of4), e.g. ("2:4", True), ("2:4 (1:4 mask)", True), ("4:8 (not 2:4)", False)."""
    if mask is None:
        return "dense", False
    if not is_2of4(mask.keep):
        return f"{mask.n}:{mask.m} (not 2:4)", False
    return ("2:4" if (mask.n, mask.m) == (2, 4) else f"2:4 ({mask.n}:{mask.m} mask)"), True


def compare_engine_to_plan(
    layers_info: list[dict[str, Any]], plan: QuantPlan, sparse_log: Mapping[str, Sequence[str]] | None
) -> list[dict[str, Any]]:
    """One row per conv of the plan: planned vs built precision and sparsity, and a status."""
    index = _index(layers_info)
    log = sparse_log or {}
    rows = []
    for info in plan.layers:
        node = f"{info.module}:Conv"
        planned = "INT8" if info.quantized else "FP16"
        planned_sparse, planned_24 = planned_sparsity(plan.masks.get(info.weight))
        layer = index.get(node)
        row: dict[str, Any] = dict(
            weight=info.weight,
            module=info.module,
            node=node,
            weight_bits=plan.weights[info.weight].bits if info.weight in plan.weights else None,
            planned_precision=planned,
            planned_sparsity=planned_sparse,
            planned_2of4=planned_24,
        )
        if layer is None:
            row.update(engine_layer=None, built_precision=None, precision_source="", built_sparsity=None)
            row.update(eligible_sparse=None, tactic="", status="not_found")
            row["text"] = f"conv {info.module}: planned {planned}, not found in the engine"
            rows.append(row)
            continue
        built, source = layer_precision(layer)
        nodes = onnx_nodes(layer)
        tactic = str(layer.get("TacticName", ""))
        sparse = (
            str(layer.get("HasSparseWeights", "0")) in ("1", "True", "true")
            or "sparse" in tactic.lower()
            or _in_log(nodes, log.get("chosen", ()))
        )
        built_sparse = "2:4" if sparse else "dense"
        status = "ok"
        if built is None:
            status = "unknown_precision"
        elif built != planned:
            status = "precision_mismatch"
        elif planned_24 and not sparse:
            status = "dense"  # TensorRT picks sparse kernels only where they are faster
        row.update(
            engine_layer=str(layer.get("Name", "")),
            built_precision=built,
            precision_source=source,
            built_sparsity=built_sparse,
            eligible_sparse=_in_log(nodes, log.get("eligible", ())) if log else None,
            tactic=tactic,
            status=status,
        )
        row["text"] = (
            f"conv {info.module}: planned {planned}, built {built or '?'}; "
            f"planned {planned_sparse}, built {built_sparse}"
        )
        rows.append(row)
    return rows


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts for a report header; ``ok`` is False when a conv runs at another precision or is missing."""
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    return dict(
        convs=len(rows),
        status=by_status,
        planned_2of4=sum(bool(r["planned_2of4"]) for r in rows),
        built_2of4=sum(r.get("built_sparsity") == "2:4" for r in rows),
        ok=not any(r["status"] in ("precision_mismatch", "not_found") for r in rows),
    )
