"""Plan + fp32 ONNX -> deployable QDQ ONNX for one profile and tier: the chain of passes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import onnx
import onnx_graphsurgeon as gs

from srdeploy.errors import RewriteError
from srdeploy.passes.base import PassResult
from srdeploy.passes.fp16 import to_fp16
from srdeploy.passes.int4 import pack_int4_weights, set_opset
from srdeploy.passes.qdq import QDQOptions, insert_qdq
from srdeploy.quant.plan import QuantPlan


def rewrite(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    profile: str,
    tier: int,
    opset: int = 19,
    int4_weights: bool = False,
    metadata: Mapping[str, Any] | None = None,
    fp16: bool | None = None,
) -> tuple[onnx.ModelProto, list[PassResult]]:
    """``fp16`` defaults to True for trt (TensorRT 11 runs float regions in the ONNX dtype);
    False keeps an fp32 trt graph, used by tests to check the Q/DQ placement exactly."""
    graph = gs.import_onnx(fp32)
    results = [insert_qdq(graph, plan, QDQOptions(profile=profile, tier=tier, int4_weights=int4_weights))]
    if profile == "trt" if fp16 is None else fp16:
        results.append(to_fp16(graph))
    model = gs.export_onnx(graph, do_type_check=False)
    model.ir_version = fp32.ir_version
    model.producer_name, model.producer_version = fp32.producer_name, fp32.producer_version
    set_opset(model, opset)
    if int4_weights:
        results.append(pack_int4_weights(model, plan))
    from srdeploy.sparsity.nm import satisfies

    # 1:4 and other sparser patterns satisfy 2:4 too; TensorRT can run all of them sparse.
    sparse = sorted(k for k, m in plan.masks.items() if m.m % 4 == 0 and satisfies(m.keep, 2, 4))
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
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise RewriteError(f"the {profile} graph fails onnx.checker: {str(exc)[:300]}", "report this as a bug") from exc
    return model, results


def plan_digest(plan: QuantPlan) -> str:
    from srdeploy.quant.plan import plan_to_json

    doc, arrays = plan_to_json(plan)
    h = hashlib.sha256(json.dumps(doc, sort_keys=True).encode())
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(arrays[k].tobytes())
    return h.hexdigest()[:16]


def float_residual_adds(graph: gs.Graph, plan: QuantPlan, tier: int, profile: str) -> list[str]:
    """Residual Add nodes whose skip input the plan does not quantize."""
    from srdeploy.quant import sites

    quantized = {sites.parse(s)[0] for s in plan.tier(tier).sites(profile) if s.endswith("@skip")}
    return sorted(
        n.name
        for n in graph.nodes
        if n.op == "Add" and n.name.endswith(":Add") and n.name[: -len(":Add")] not in quantized and _is_residual(n)
    )


def _is_residual(node: gs.Node) -> bool:
    return all(not isinstance(t, gs.Constant) for t in node.inputs)
