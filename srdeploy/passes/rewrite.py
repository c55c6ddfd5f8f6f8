"""Plan + base fp32 ONNX + deployed float parameters -> the QDQ ONNX of one profile and tier: the passes in
order (set_float_weights, insert_qdq, fold_output_affine, pad_output_channels, integer_movement and
nhwc_entry where the profile asks, float dtype, opset, INT4 packing, metadata), each reporting what it did."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from srdeploy.errors import RewriteError
from srdeploy.passes.base import PassResult
from srdeploy.passes.fp16 import to_fp16
from srdeploy.passes.int4 import pack_int4_weights, set_opset
from srdeploy.passes.integer_ops import integer_movement
from srdeploy.passes.nhwc_entry import nhwc_entry
from srdeploy.passes.output_affine import fold_output_affine
from srdeploy.passes.pad_channels import pad_output_channels
from srdeploy.passes.qdq import QDQOptions, insert_qdq
from srdeploy.passes.weights import set_float_weights
from srdeploy.profiles import get_profile
from srdeploy.quant import sites
from srdeploy.quant.plan import QuantPlan
from srdeploy.sparsity.nm import sparse_2of4_weights


def rewrite(
    base: onnx.ModelProto,
    plan: QuantPlan,
    profile: str,
    tier: int,
    params: Mapping[str, np.ndarray],
    metadata: Mapping[str, Any] | None = None,
    fp16: bool | None = None,
) -> tuple[onnx.ModelProto, list[PassResult]]:
    """``params``: deployed float parameters (quant.apply.deployed_weights). ``fp16`` overrides the plan's
    emission float dtype (tests check the Q/DQ placement exactly on an fp32 graph)."""
    emission = plan.emission.get(profile)
    if emission is None:
        raise RewriteError(f"the plan has no emission settings for profile '{profile}'", f"profiles: {plan.profiles}")
    graph = gs.import_onnx(base)
    quantized = plan.tier(tier).quantized  # the float tier: deployed float weights, no Q/DQ
    results = [set_float_weights(graph, params)]
    if quantized:
        results.append(insert_qdq(graph, plan, QDQOptions(profile=profile, tier=tier)))
        rules = get_profile(profile)
        if rules.image_output_grid:
            results.append(fold_output_affine(graph))
        if rules.pad_output_channels:
            results.append(pad_output_channels(graph, rules.pad_output_channels))
        if rules.integer_movement:
            results.append(integer_movement(graph))
        if rules.nhwc_entry:
            results.append(nhwc_entry(graph, rules.weight_container))
    if emission.float_dtype == "float16" if fp16 is None else fp16:
        results.append(to_fp16(graph))
    model = gs.export_onnx(graph, do_type_check=False)
    model.ir_version = base.ir_version
    model.producer_name, model.producer_version = base.producer_name, base.producer_version
    set_opset(model, emission.opset)
    if emission.int4_weights and quantized:
        results.append(pack_int4_weights(model, plan))
    _set_metadata(model, plan, profile, tier, graph, metadata)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise RewriteError(f"the {profile} graph fails onnx.checker: {str(exc)[:300]}", "report this as a bug") from exc
    return model, results


def _set_metadata(
    model: onnx.ModelProto,
    plan: QuantPlan,
    profile: str,
    tier: int,
    graph: gs.Graph,
    metadata: Mapping[str, Any] | None,
) -> None:
    sparse = sparse_2of4_weights(plan.masks)
    props = {
        "srdeploy.profile": profile,
        "srdeploy.tier": str(tier),
        "srdeploy.tier_name": plan.tier(tier).name,
        "srdeploy.sparse_2of4_weights": json.dumps(sparse),
        # residual Adds left float on purpose (quant.residual_skips): lint reports them as info
        "srdeploy.float_residual_adds": json.dumps(float_residual_adds(graph, plan, tier, profile)),
        "srdeploy.plan_sha256": plan_digest(plan),
        **{k: str(v) for k, v in (metadata or {}).items()},
    }
    del model.metadata_props[:]
    for k in sorted(props):
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=props[k]))


def plan_digest(plan: QuantPlan) -> str:
    from srdeploy.quant.plan_io import plan_to_json

    doc, arrays = plan_to_json(plan)
    h = hashlib.sha256(json.dumps(doc, sort_keys=True).encode())
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(arrays[k].tobytes())
    return h.hexdigest()[:16]


def float_residual_adds(graph: gs.Graph, plan: QuantPlan, tier: int, profile: str) -> list[str]:
    """Residual Add nodes whose skip input the plan does not quantize."""
    quantized = {sites.parse(s)[0] for s in plan.tier(tier).sites(profile) if s.endswith("@skip")}
    return sorted(
        n.name
        for n in graph.nodes
        if n.op == "Add" and n.name.endswith(":Add") and n.name[: -len(":Add")] not in quantized and _is_residual(n)
    )


def _is_residual(node: gs.Node) -> bool:
    return all(not isinstance(t, gs.Constant) for t in node.inputs)
