"""TensorRT sparse-tensor-core eligibility and the plain-language speed-up summary."""

from __future__ import annotations

import numpy as np

from srdeploy.quant.plan import LayerInfo, NMMask
from srdeploy.sparsity.eligibility import layer_eligibility, model_eligibility
from srdeploy.sparsity.nm import nm_mask


def _layer(c: int, k: int | None = None, groups: int = 1, name: str = "body.0.body.0", role: str = "body") -> LayerInfo:
    k = c if k is None else k
    return LayerInfo(f"{name}.weight", name, role, True, "", c, k, (3, 3), groups, 9.0 * c * k / groups)


def _mask(layer: LayerInfo, n: int = 2, m: int = 4) -> NMMask:
    w = np.random.default_rng(0).standard_normal((layer.out_channels, layer.in_channels // layer.groups, 3, 3))
    return NMMask(n=n, m=m, keep=nm_mask(w, n, m))


def _body(c: int, blocks: int = 4) -> list[LayerInfo]:
    return [_layer(c, name=f"body.{i}.body.{j}") for i in range(blocks) for j in (0, 2)]


def test_64_channels_no_speedup_expected() -> None:
    layers = _body(64)
    masks = {x.weight: _mask(x) for x in layers}
    res = model_eligibility(layers, masks)
    assert res["sparse_tensor_core_layers"] == 8 and res["likely_speedup_layers"] == 0
    assert res["summary"].startswith("No speed-up should be expected")
    assert "64 channels" in res["summary"] and "256" in res["summary"]
    row = res["layers"][0]
    assert row["sparse_tensor_cores"] and not row["likely_speedup"] and row["tool_friendly"]
    assert "little or no speed-up" in row["why"]
    dense = model_eligibility(layers, {})
    assert "should not be expected" in dense["summary"] and "at most 64 channels" in dense["summary"]


def test_256_channels_speedup_possible() -> None:
    layers = _body(256, blocks=2)
    masks = {x.weight: _mask(x) for x in layers}
    res = model_eligibility(layers, masks)
    assert res["likely_speedup_layers"] == 4
    assert res["summary"].startswith("A TensorRT speed-up may be possible") and "trtexec" in res["summary"]
    assert res["likely_speedup_mac_share"] == 1.0
    assert "may speed up" in model_eligibility(layers, {})["summary"]


def test_patterns_shapes_and_groups() -> None:
    x = _layer(64)
    assert layer_eligibility(x, _mask(x, 1, 4))["sparse_tensor_cores"]  # 1:4 satisfies 2:4
    assert layer_eligibility(x, _mask(x, 2, 8))["sparse_tensor_cores"]  # at most 2 per 8 -> at most 2 per 4
    r = layer_eligibility(x, _mask(x, 3, 4))
    assert not r["sparse_tensor_cores"] and "does not satisfy 2:4" in r["why"]
    assert not layer_eligibility(x, _mask(x, 4, 8))["sparse_tensor_cores"]
    assert not layer_eligibility(x, None)["sparse_tensor_cores"]
    g = _layer(256, groups=4)
    r = layer_eligibility(g, _mask(g))
    assert not r["sparse_tensor_cores"] and "grouped" in r["why"]
    odd = _layer(24, k=20)  # C % 16 != 0, K % 8 != 0: TensorRT could, pruning tools would skip it
    r = layer_eligibility(odd, _mask(odd))
    assert r["sparse_tensor_cores"] and not r["tool_friendly"]


def test_mixed_model_counts_only_wide_layers() -> None:
    layers = [*_body(64, blocks=1), _layer(256, name="body.9.body.0")]
    masks = {x.weight: _mask(x) for x in layers}
    res = model_eligibility(layers, masks)
    assert res["sparse_tensor_core_layers"] == 3 and res["likely_speedup_layers"] == 1
    assert 0 < res["likely_speedup_mac_share"] < 1
    no24 = model_eligibility(layers, {x.weight: _mask(x, 3, 4) for x in layers})
    assert no24["summary"].startswith("No TensorRT speed-up from sparsity")
