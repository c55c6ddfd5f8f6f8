"""Emit: plan + the model as trained -> the QDQ graph of every profile and tier (the build, and
``srdeploy emit`` reproducing a build's graphs from its plan without calibrating again).

The base graph is fp32.onnx, or, when the plan removes channels, the export of the pruned network; the
deployed float parameters come from apply_plan; the rewrite passes do the rest. Every pass reports what it
changed and skipped; the records land in report.json.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from srdeploy.buildfolder import BuildFolder
from srdeploy.engines import LINTERS
from srdeploy.export import export_onnx
from srdeploy.models.base import SRModel
from srdeploy.passes.rewrite import rewrite
from srdeploy.profiles import get_profile
from srdeploy.quant.apply import apply_plan, deployed_weights
from srdeploy.quant.plan import QuantPlan


@dataclass(frozen=True)
class EmitInputs:
    """What emission needs besides the plan, computed once per build."""

    base: onnx.ModelProto
    params: Mapping[str, np.ndarray]


def emit_inputs(model: SRModel, plan: QuantPlan, fp32: onnx.ModelProto, opset: int) -> EmitInputs:
    if plan.structure:
        pruned = replace(model, module=apply_plan(model.module, plan, masks=False, equalization=False))
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(pruned, Path(tmp) / "pruned.onnx", opset=opset)
            base = onnx.load(str(path))
    else:
        base = fp32
    return EmitInputs(base=base, params=deployed_weights(model.module, plan))


def emit_graph(inputs: EmitInputs, plan: QuantPlan, profile: str, tier: int) -> tuple[onnx.ModelProto, list]:
    """One profile's graph of one tier; its metadata carries the plan's digest and the recipe's."""
    meta = {"srdeploy.recipe_digest": plan.provenance.recipe_digest}
    return rewrite(inputs.base, plan, profile, tier, inputs.params, metadata=meta)


def graph_file(folder: BuildFolder, plan: QuantPlan, profile: str, tier: int) -> Path:
    if not plan.tier(tier).quantized:
        return folder.profile_float_model(profile)
    return folder.profile_model(profile, None if sum(t.quantized for t in plan.tiers) == 1 else tier)


def emit_all(inputs: EmitInputs, plan: QuantPlan, folder: BuildFolder, advance: Any = None) -> dict[str, Any]:
    """Write every profile x tier graph into ``folder``; returns the report sections (passes, lint)."""
    passes: dict[str, list[dict[str, Any]]] = {}
    lint: dict[str, Any] = {}
    done = 0
    for profile in plan.profiles:
        checker = get_profile(profile).lint
        for t in plan.tiers:
            model, results = emit_graph(inputs, plan, profile, t.index)
            path = graph_file(folder, plan, profile, t.index)
            rel = str(path.relative_to(folder.root))
            if checker:
                lint[rel] = LINTERS[checker](model, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            onnx.save(model, str(path))
            passes[rel] = [r.summary() for r in results]
            if get_profile(profile).ir:
                passes[rel].append(write_ir(get_profile(profile).ir, path))
            done += 1
            if advance:
                advance(done)
    return {"passes": passes, "lint": lint_summary(lint)} if lint else {"passes": passes}


def write_ir(runtime: str, onnx_path: Path) -> dict[str, Any]:
    """The graph in the runtime's own format beside the ONNX (OpenVINO IR), or why it was skipped."""
    from srdeploy.backends.registry import capabilities

    caps = capabilities(runtime)
    if not caps.available:
        return dict(name=f"write_ir[{runtime}]", changed=False, skipped=[dict(item=onnx_path.name, reason=caps.reason)])
    from srdeploy.backends.openvino_ir import onnx_to_ir

    xml = onnx_to_ir(onnx_path, onnx_path.with_suffix(".xml"))
    return dict(name=f"write_ir[{runtime}]", changed=True, changes={"ir": xml.name}, skipped=[])


def lint_summary(lint: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        k: dict(
            errors=v["errors"],
            warnings=[
                f"{f['rule']} at {f['node']}: {f['message']}" for f in v["findings"] if f["severity"] == "warning"
            ],
        )
        for k, v in lint.items()
    }


def base_opset(fp32: onnx.ModelProto) -> int:
    return next(op.version for op in fp32.opset_import if op.domain in ("", "ai.onnx"))


def emit_from_folder(build_dir: Path, profile: str, tier: int | None = None) -> tuple[bytes, Path]:
    """Re-emit one graph of a build from its plan and its model as trained (no calibration): the serialized
    graph, and the path of the build's own copy of it (for a byte comparison)."""
    from srdeploy.errors import PlanError
    from srdeploy.models.deploy_form import load_deploy_model
    from srdeploy.quant.plan_io import load_plan

    folder = BuildFolder(Path(build_dir))
    folder.verify()
    plan = load_plan(folder.plan)
    if profile not in plan.profiles:
        raise PlanError(f"the build has no '{profile}' profile", f"profiles in this build: {', '.join(plan.profiles)}")
    tier = plan.default_tier if tier is None else tier
    plan.tier(tier)  # unknown tiers fail with the list
    fp32 = onnx.load(str(folder.fp32_onnx))
    inputs = emit_inputs(load_deploy_model(folder.root), plan, fp32, base_opset(fp32))
    model, _ = emit_graph(inputs, plan, profile, tier)
    return model.SerializeToString(), graph_file(folder, plan, profile, tier)
