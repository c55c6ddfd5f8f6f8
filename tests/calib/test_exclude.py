"""quant.exclude: matching by module path, prefix, weight, node name and op type; the excluded conv stays
float in the plan and in every emitted graph; unknown names fail in one line with close matches."""

from __future__ import annotations

import onnx
import pytest
from srtest import params, plan_for, recipe

from srdeploy.calib.exclude import apply_exclusions
from srdeploy.calib.layers import layer_infos
from srdeploy.errors import RecipeError
from srdeploy.passes.rewrite import rewrite
from srdeploy.quant import sites
from srdeploy.recipe import recipe_from_dict

EXCLUDED = "body.1.body.0"


def _layers(tiny_model, tiny_export):
    return layer_infos(tiny_model, list(tiny_export[1].convs))


def _float(layers) -> set[str]:
    return {x.module for x in layers if not x.quantized and x.role == "body"}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("body.1.body.0", {"body.1.body.0"}),
        ("body.1.body.0.weight", {"body.1.body.0"}),
        ("body.1.body.0:Conv", {"body.1.body.0"}),
        ("body.1", {"body.1.body.0", "body.1.body.2"}),  # a block: every conv under it
    ],
)
def test_entries_match(tiny_model, tiny_export, entry: str, expected: set[str]) -> None:
    layers = apply_exclusions(_layers(tiny_model, tiny_export), [entry], tiny_export[1])
    assert _float(layers) == expected
    for x in layers:
        if x.module in expected:
            assert entry in x.reason and "quant.exclude" in x.reason


def test_a_prefix_matches_whole_components_only(tiny_model, tiny_export) -> None:
    with pytest.raises(RecipeError, match="names no conv"):
        apply_exclusions(_layers(tiny_model, tiny_export), ["body.1.bod"], tiny_export[1])


def test_op_type_excludes_every_conv_and_is_refused(tiny_model, tiny_export) -> None:
    with pytest.raises(RecipeError, match="leaves no conv quantized"):
        apply_exclusions(_layers(tiny_model, tiny_export), ["op:Conv"], tiny_export[1])
    with pytest.raises(RecipeError, match=r"op:Conv"):
        apply_exclusions(_layers(tiny_model, tiny_export), ["op:Gemm"], tiny_export[1])


def test_unknown_name_lists_close_matches(tiny_model, tiny_export) -> None:
    with pytest.raises(RecipeError) as info:
        apply_exclusions(_layers(tiny_model, tiny_export), ["body.1.bdy.0"], tiny_export[1])
    message = str(info.value)
    assert "\n" not in message and "body.1.body.0" in message and "did you mean" in message


@pytest.mark.parametrize("bad", ["", " body.1", "op:", "op:1x1"])
def test_recipe_refuses_malformed_entries(bad: str) -> None:
    with pytest.raises(RecipeError, match=r"quant\.exclude"):
        recipe_from_dict({"name": "t", "model": {"path": "m.pt"}, "quant": {"exclude": [bad]}})


@pytest.mark.parametrize("profile", ["trt", "ort", "openvino"])
def test_excluded_conv_has_no_qdq_in_the_graph(tiny_model, tiny_export, profile: str) -> None:
    fp32, graph = tiny_export
    quant = dict(weight_bits=8, act_bits=8, method="minmax", exclude=[EXCLUDED])
    plan = plan_for(tiny_model, fp32, graph, recipe(quant, export={"profiles": [profile]}))
    weight = f"{EXCLUDED}.weight"
    assert weight not in plan.weights
    assert sites.site(weight, sites.INPUT) not in plan.ranges[profile]
    assert sites.site(weight, sites.OUTPUT) not in plan.ranges[profile]
    assert len(plan.weights) == sum(x.quantized for x in plan.layers) > 0
    model = rewrite(fp32, plan, profile, 0, params(tiny_model, plan))[0]
    _assert_float_conv(model, EXCLUDED, profile)
    other = next(x.module for x in plan.layers if x.quantized)
    producers = {o: n for n in model.graph.node for o in n.output}
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith(other + ":"))
    assert producers[conv.input[1]].op_type == "DequantizeLinear"  # the other convs are still quantized


def _assert_float_conv(model: onnx.ModelProto, module: str, profile: str) -> None:
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith(module + ":"))
    weight = conv.input[1]
    assert weight not in producers or producers[weight].op_type not in ("DequantizeLinear",)
    if weight in producers:  # FP16 graphs cast float weights, never dequantize them
        assert producers[weight].op_type == "Cast"
    else:
        assert inits[weight].data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    names = " ".join(n.name for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear"))
    assert f"{module}.weight" not in names, names  # no Q/DQ of its weight, input or output site
    if profile == "trt":  # no conv-output grids on this layout: nothing quantized feeds it
        src = producers.get(conv.input[0])
        assert src is None or src.op_type != "DequantizeLinear"
