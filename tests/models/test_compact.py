"""SRVGGNetCompact: released layouts, activation/hparam detection, upstream-equal outputs, bad input."""

from __future__ import annotations

import pytest
import torch
from official_layouts import compact_shapes, random_state, reference_compact

from srdeploy.errors import ModelError
from srdeploy.models import detect_architecture, load_model
from srdeploy.models.compact import SRVGGNetCompact
from srdeploy.models.loading import build_model


@pytest.mark.parametrize(("name", "num_conv"), [("realesr-animevideov3", 16), ("realesr-general-x4v3", 32)])
def test_released_compact_files_load_with_their_hparams(name: str, num_conv: int) -> None:
    sd = random_state(compact_shapes(num_conv, 64, 4))
    module, arch, hp = build_model(sd)
    assert arch == "compact", name
    assert hp == dict(scale=4, num_feat=64, num_conv=num_conv, act_type="prelu")
    own = module.state_dict()
    assert own.keys() == sd.keys() and all(torch.equal(own[k], v) for k, v in sd.items())
    assert sum(isinstance(m, torch.nn.PReLU) and m.num_parameters == 64 for m in module.modules()) == num_conv + 1


@pytest.mark.parametrize(("scale", "prelu"), [(4, True), (2, True), (3, True), (1, True), (2, False)])
def test_compact_matches_the_real_esrgan_forward(scale: int, prelu: bool) -> None:
    sd = random_state(compact_shapes(3, 16, scale, prelu=prelu), seed=scale, std=0.2)
    if prelu:
        for k in [k for k in sd if sd[k].ndim == 1 and int(k.split(".")[1]) % 2]:
            sd[k] = sd[k].abs()  # PReLU slopes are small positive numbers in trained files
    module, _, hp = build_model(sd)
    assert hp["scale"] == scale and hp["num_conv"] == 3 and hp["num_feat"] == 16
    assert hp["act_type"] == ("prelu" if prelu else "relu")
    x = torch.rand(2, 3, 7, 5)
    with torch.no_grad():
        got = module(x)
    assert got.shape == (2, 3, 7 * scale, 5 * scale)
    torch.testing.assert_close(got, reference_compact(sd, x, hp["act_type"]), atol=1e-5, rtol=1e-4)


def test_keyless_activation_can_be_overridden() -> None:
    sd = random_state(compact_shapes(2, 8, 2, prelu=False), std=0.3)
    module, _, hp = build_model(sd, act_type="leakyrelu")
    assert hp["act_type"] == "leakyrelu"
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        leaky = module(x)
        relu = build_model(sd)[0](x)
    torch.testing.assert_close(leaky, reference_compact(sd, x, "leakyrelu"), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(leaky, relu)


def test_roles_residual_and_deploy_form() -> None:
    torch.manual_seed(0)
    net = SRVGGNetCompact(scale=4, num_feat=8, num_conv=3).eval()
    roles = net.layer_roles()
    assert roles == {
        "body.0.weight": "head",
        "body.2.weight": "body",
        "body.4.weight": "body",
        "body.6.weight": "body",
        "body.8.weight": "tail",
    }
    assert net.base_add.role == "global"
    x = torch.rand(1, 3, 5, 6)
    with torch.no_grad():
        before = net(x)
        net.fuse_for_deploy()
        torch.testing.assert_close(net(x), before)
    arch, hp = detect_architecture(net.state_dict())
    assert arch.name == "compact" and hp == net.hparams


def test_reload_from_a_params_file(tmp_path) -> None:
    sd = random_state(compact_shapes(2, 8, 4))
    torch.save({"params": sd}, tmp_path / "realesr-animevideov3.pth")
    model = load_model(tmp_path / "realesr-animevideov3.pth")
    assert model.arch == "compact" and model.scale == 4 and model.name == "realesr-animevideov3"


def test_inconsistent_compact_files_say_what_was_found() -> None:
    sd = random_state(compact_shapes(3, 8, 4))
    del sd["body.5.weight"]
    with pytest.raises(ModelError, match=r"PReLU slopes at body indices \[1, 3, 7\], expected \[1, 3, 5, 7\]"):
        build_model(sd)
    sd = random_state(compact_shapes(3, 8, 4))
    del sd["body.4.weight"], sd["body.4.bias"]
    with pytest.raises(ModelError, match=r"convs at body indices \[0, 2, 6, 8\]"):
        build_model(sd)
    sd = random_state(compact_shapes(3, 8, 4))
    sd["body.8.weight"], sd["body.8.bias"] = torch.zeros(20, 8, 3, 3), torch.zeros(20)
    with pytest.raises(ModelError, match="maps 3 input channels to 20 before PixelShuffle"):
        build_model(sd)
    sd = random_state(compact_shapes(3, 8, 4))
    sd["body.4.weight"] = torch.zeros(8, 6, 3, 3)
    with pytest.raises(ModelError, match=r"'body.4.weight' has shape \(8, 6, 3, 3\).*expects \(8, 8, 3, 3\)"):
        build_model(sd)
