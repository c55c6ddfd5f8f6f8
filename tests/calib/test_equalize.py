from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from srtest import exported, patches, tiny_edsr

from srdeploy.calib.equalize import equalize, find_groups, refresh_initializers
from srdeploy.calib.observers import observe
from srdeploy.quant import sites


def test_groups_of_edsr(tmp_path: Path) -> None:
    model = tiny_edsr(blocks=2)
    proto, _ = exported(model, tmp_path)
    groups, _ = find_groups(proto)
    by_consumers = {g.consumers: g for g in groups}
    # conv1 -> ReLU -> conv2 of each block
    assert ("body.0.body.2.weight",) in by_consumers
    # the residual stream: head + every conv2 + body conv produce; conv1s, body conv, upsampler consume
    stream = next(g for g in groups if "head.0.weight" in g.producers)
    assert set(stream.consumers) == {"body.0.body.0.weight", "body.1.body.0.weight", "body.2.weight", "tail.0.0.weight"}
    assert set(stream.producers) == {"head.0.weight", "body.0.body.2.weight", "body.1.body.2.weight", "body.2.weight"}


def test_equalization_keeps_the_fp32_function_and_evens_channel_ranges(tmp_path: Path) -> None:
    model = tiny_edsr(blocks=2, feats=8)
    with torch.no_grad():  # make channel ranges very uneven
        model.module.body[0].body[0].weight[:4].mul_(20.0)
    proto, _ = exported(model, tmp_path)
    x = torch.from_numpy(patches(4, 16, seed=9))
    with torch.no_grad():
        before = model.module(x)
    quantized = {
        "body.0.body.0.weight",
        "body.0.body.2.weight",
        "body.1.body.0.weight",
        "body.1.body.2.weight",
        "body.2.weight",
    }
    names = [sites.site(w, sites.INPUT) for w in quantized]
    stats = observe(model.module, names, patches(8))
    site = sites.site("body.0.body.2.weight", sites.INPUT)
    spread_before = float(stats[site].ch_max.max() / max(np.median(stats[site].ch_max), 1e-9))
    report = equalize(model.module, proto, stats, quantized, {w: 8 for w in quantized})
    assert len(report["groups"]) >= 3
    with torch.no_grad():
        after = model.module(x)
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    stats2 = observe(model.module, names, patches(8))
    spread_after = float(stats2[site].ch_max.max() / max(np.median(stats2[site].ch_max), 1e-9))
    assert spread_after < spread_before / 3
    assert refresh_initializers(proto, model.module) > 0
    w = next(i for i in proto.graph.initializer if i.name == "body.0.body.2.weight")
    np.testing.assert_array_equal(
        np.frombuffer(w.raw_data, np.float32).reshape(w.dims), model.module.body[0].body[2].weight.detach().numpy()
    )
