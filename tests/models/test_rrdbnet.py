"""RRDBNet: official key layouts, hparam detection, upstream-equal outputs, deploy form, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from official_layouts import (
    OldESRGAN,
    basicsr_pixel_unshuffle,
    basicsr_rrdbnet_shapes,
    esrgan_rrdbnet_arch_shapes,
    random_state,
    reference_rrdbnet,
)

from srdeploy.errors import ModelError
from srdeploy.models import detect_architecture, load_model
from srdeploy.models.loading import build_model
from srdeploy.models.rrdbnet import ResidualDenseBlock, RRDBNet


@pytest.mark.parametrize(
    ("name", "num_block", "in_ch", "scale"),
    [("RealESRGAN_x4plus", 23, 3, 4), ("RealESRGAN_x4plus_anime_6B", 6, 3, 4), ("RealESRGAN_x2plus", 23, 12, 2)],
)
def test_released_real_esrgan_layouts_load_with_their_hparams(name: str, num_block: int, in_ch: int, scale: int):
    sd = random_state(basicsr_rrdbnet_shapes(num_block, 64, 32, in_ch=in_ch))
    module, arch, hp = build_model(sd)
    assert arch == "rrdbnet", name
    assert hp == dict(scale=scale, num_feat=64, num_block=num_block, num_grow_ch=32, num_upsample=2)
    own = module.state_dict()
    assert own.keys() == sd.keys()
    assert all(torch.equal(own[k], v) for k, v in sd.items())


def test_rrdbnet_matches_the_basicsr_forward_at_every_scale() -> None:
    for scale, in_ch, n_up, h, w in ((4, 3, 2, 6, 5), (2, 12, 2, 8, 6), (1, 48, 2, 8, 12), (8, 3, 3, 4, 3)):
        sd = random_state(basicsr_rrdbnet_shapes(2, 16, 8, in_ch=in_ch, n_up=n_up), seed=scale)
        module, _, hp = build_model(sd)
        assert hp["scale"] == scale and hp["num_upsample"] == n_up
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            torch.testing.assert_close(module(x), reference_rrdbnet(sd, x), atol=1e-5, rtol=1e-4)


def test_torch_pixel_unshuffle_has_basicsr_channel_order() -> None:
    x = torch.arange(2 * 3 * 8 * 4, dtype=torch.float32).view(2, 3, 8, 4)
    assert torch.equal(F.pixel_unshuffle(x, 2), basicsr_pixel_unshuffle(x, 2))


@pytest.mark.parametrize(("scale", "in_ch"), [(2, 12), (1, 48)])
def test_unshuffle_variants_accept_any_size_like_real_esrgan_inference(scale: int, in_ch: int) -> None:
    """RealESRGANer reflect-pads the image to a multiple of the unshuffle factor and crops the output."""
    sd = random_state(basicsr_rrdbnet_shapes(1, 8, 4, in_ch=in_ch), seed=3)
    module, _, _ = build_model(sd)
    factor = 4 // scale
    x = torch.rand(1, 3, 9, 7)
    pad_h, pad_w = (-9) % factor, (-7) % factor
    padded = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    with torch.no_grad():
        got = module(x)
        expected = reference_rrdbnet(sd, padded)[:, :, : 9 * scale, : 7 * scale]
    assert got.shape == (1, 3, 9 * scale, 7 * scale)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("n_up", [1, 2, 3])
def test_original_esrgan_layout_is_converted_and_computes_the_same(n_up: int, tmp_path: Path) -> None:
    torch.manual_seed(n_up)
    old = OldESRGAN(nf=16, nb=2, gc=8, n_up=n_up).eval()
    keys = set(old.state_dict())
    assert {"model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.2.weight"} <= keys
    if n_up == 2:
        assert {"model.3.weight", "model.6.weight", "model.8.weight", "model.10.weight"} <= keys
    torch.save(old.state_dict(), tmp_path / "RRDB_ESRGAN.pth")
    loaded = load_model(tmp_path / "RRDB_ESRGAN.pth")
    assert loaded.arch == "rrdbnet" and loaded.scale == 2**n_up
    assert loaded.hparams == dict(scale=2**n_up, num_feat=16, num_block=2, num_grow_ch=8, num_upsample=n_up)
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), old(x), atol=1e-5, rtol=1e-4)


def test_full_size_original_esrgan_x4_maps_every_tensor() -> None:
    old_sd = OldESRGAN(nf=64, nb=23).state_dict()
    module, _, hp = build_model(old_sd)
    assert hp == dict(scale=4, num_feat=64, num_block=23, num_grow_ch=32, num_upsample=2)
    own = module.state_dict()
    assert torch.equal(own["body.22.rdb3.conv5.weight"], old_sd["model.1.sub.22.RDB3.conv5.0.weight"])
    assert torch.equal(own["conv_body.bias"], old_sd["model.1.sub.23.bias"])
    assert torch.equal(own["conv_up2.weight"], old_sd["model.6.weight"])
    assert torch.equal(own["conv_hr.weight"], old_sd["model.8.weight"])
    assert torch.equal(own["conv_last.bias"], old_sd["model.10.bias"])
    assert len(own) == len(old_sd)


def test_esrgan_rrdbnet_arch_layout_is_converted() -> None:
    sd = random_state(esrgan_rrdbnet_arch_shapes(23))
    module, arch, hp = build_model(sd)
    assert arch == "rrdbnet" and hp["num_block"] == 23 and hp["scale"] == 4
    own = module.state_dict()
    assert torch.equal(own["body.7.rdb2.conv3.bias"], sd["RRDB_trunk.7.RDB2.conv3.bias"])
    assert torch.equal(own["conv_body.weight"], sd["trunk_conv.weight"])
    assert torch.equal(own["conv_up1.weight"], sd["upconv1.weight"])
    assert torch.equal(own["conv_hr.weight"], sd["HRconv.weight"])


def test_fuse_for_deploy_folds_the_rdb_scale_and_keeps_the_output() -> None:
    torch.manual_seed(0)
    net = RRDBNet(scale=2, num_feat=16, num_block=2, num_grow_ch=8).eval()
    conv5 = net.body[1].rdb3.conv5.weight.detach().clone()
    x = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        before = net(x)
        net.fuse_for_deploy()
        after = net(x)
        net.fuse_for_deploy()
        again = net(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(again, after)
    torch.testing.assert_close(net.body[1].rdb3.conv5.weight, conv5 * 0.2)
    assert all(m.res_scale == 1 for m in net.modules() if isinstance(m, ResidualDenseBlock))


def test_layer_roles_and_residual_adds() -> None:
    net = RRDBNet(scale=4, num_feat=8, num_block=2, num_grow_ch=4)
    roles = net.layer_roles()
    assert roles["conv_first.weight"] == "head" and roles["conv_last.weight"] == "tail"
    assert {roles[k] for k in ("conv_up1.weight", "conv_up2.weight", "conv_hr.weight")} == {"upsampler"}
    assert roles["conv_body.weight"] == "body" and roles["body.1.rdb3.conv5.weight"] == "body"
    assert sum(r == "body" for r in roles.values()) == 2 * 3 * 5 + 1
    adds = {n: m.role for n, m in net.named_modules() if type(m).__name__ == "ResidualAdd"}
    assert adds["body_add"] == "global" and adds["body.0.add"] == "block" and adds["body.1.rdb2.add"] == "block"
    assert len(adds) == 2 * 4 + 1


def test_random_init_detect_roundtrip() -> None:
    net = RRDBNet(scale=8, num_feat=8, num_block=3, num_grow_ch=4)
    arch, hp = detect_architecture(net.state_dict())
    assert arch.name == "rrdbnet" and hp == net.hparams


def _shapes_sd(**kw: int) -> dict[str, torch.Tensor]:
    return {k: torch.zeros(s) for k, s in basicsr_rrdbnet_shapes(**kw).items()}


def test_a_missing_block_is_reported_with_the_blocks_found() -> None:
    sd = {k: v for k, v in _shapes_sd(num_block=4, nf=8, gc=4).items() if not k.startswith("body.2.")}
    with pytest.raises(ModelError, match=r"body indices 0-1, 3.*only body.0-1 are complete"):
        build_model(sd)


def test_missing_tensors_and_wrong_width_name_found_and_expected() -> None:
    sd = _shapes_sd(num_block=2, nf=8, gc=4)
    del sd["body.1.rdb2.conv4.weight"]
    with pytest.raises(ModelError, match=r"missing \['body.1.rdb2.conv4.weight'\]"):
        build_model(sd)
    sd = _shapes_sd(num_block=2, nf=8, gc=4)
    sd["body.1.rdb1.conv2.weight"] = torch.zeros(4, 10, 3, 3)
    found_expected = r"'body.1.rdb1.conv2.weight' has shape \(4, 10, 3, 3\).*expects \(4, 12, 3, 3\)"
    with pytest.raises(ModelError, match=found_expected):
        build_model(sd)


def test_non_rgb_and_odd_upsamplers_are_refused_with_what_was_found() -> None:
    with pytest.raises(ModelError, match="maps 4 input channels to 3"):
        build_model(_shapes_sd(num_block=1, nf=8, gc=4, in_ch=4))
    sd = _shapes_sd(num_block=1, nf=8, gc=4)
    del sd["conv_up1.weight"], sd["conv_up1.bias"]
    with pytest.raises(ModelError, match=r"upsampling convs \['conv_up2.weight'\]"):
        build_model(sd)


def test_wrong_scale_override_is_refused() -> None:
    with pytest.raises(ModelError, match=r"conv_first\.weight"):
        build_model(_shapes_sd(num_block=1, nf=8, gc=4), scale=2)
    with pytest.raises(ModelError, match="scale 3"):
        build_model(_shapes_sd(num_block=1, nf=8, gc=4), scale=3)


def test_unsupported_original_esrgan_variant_is_refused() -> None:
    sd = OldESRGAN(nf=8, nb=1, gc=4).state_dict()
    sd["model.5.weight"] = sd.pop("model.6.weight")  # as if a pixel-shuffle stage had moved the conv
    sd["model.5.bias"] = sd.pop("model.6.bias")
    with pytest.raises(ModelError, match=r"convs after the trunk at model.\[3, 5, 8, 10\]"):
        build_model(sd)
