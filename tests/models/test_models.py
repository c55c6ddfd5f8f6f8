from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srdeploy.errors import ModelError
from srdeploy.models import detect_architecture, load_model, save_checkpoint
from srdeploy.models.carn import CARN
from srdeploy.models.edsr import EDSR
from srdeploy.models.rdn import RDN
from srdeploy.models.srresnet import SRResNet

NETS = [
    lambda: EDSR(scale=4, n_resblocks=2, n_feats=8),
    lambda: EDSR(scale=3, n_resblocks=2, n_feats=8),
    lambda: EDSR(scale=2, n_resblocks=3, n_feats=256, res_scale=0.1),
    lambda: SRResNet(scale=4, n_resblocks=2, n_feats=8, bn=True),
    lambda: SRResNet(scale=2, n_resblocks=2, n_feats=8, bn=False),
    lambda: RDN(scale=3, n_blocks=2, n_convs=2, growth=8),
    lambda: RDN(scale=4, n_blocks=2, n_convs=3, growth=8),
    lambda: CARN(scale=2),
    lambda: CARN(scale=4, multi_scale=True),
]


@pytest.mark.parametrize("make", NETS)
def test_detect_and_reload_preserve_parameters(make, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = make().eval()
    arch, hp = detect_architecture(net.state_dict())
    assert arch.name == net.arch and hp["scale"] == net.scale
    for suffix in (".pt", ".safetensors"):
        path = save_checkpoint(net, tmp_path / f"m{suffix}")
        loaded = load_model(path)
        assert loaded.arch == net.arch and loaded.scale == net.scale
        for k, v in net.state_dict().items():
            assert torch.equal(loaded.module.state_dict()[k], v), k
        x = torch.rand(1, 3, 10, 12)
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(x), net(x))


@pytest.mark.parametrize("make", NETS)
def test_deploy_form_keeps_the_function(make) -> None:
    torch.manual_seed(1)
    net = make().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        before = net(x)
        net.fuse_for_deploy()
        after = net(x)
        net.fuse_for_deploy()  # idempotent
        again = net(x)
    torch.testing.assert_close(after, before, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(again, after)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_official_edsr_layout_with_module_prefix_and_wrapper(tmp_path: Path) -> None:
    net = EDSR(scale=2, n_resblocks=2, n_feats=8)
    sd = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "wrapped.pth")
    assert load_model(tmp_path / "wrapped.pth").arch == "edsr"


def test_unknown_architecture_is_refused_with_a_hint(tmp_path: Path) -> None:
    torch.save({"foo.weight": torch.zeros(3, 3)}, tmp_path / "x.pt")
    with pytest.raises(ModelError, match="match no built-in architecture") as e:
        load_model(tmp_path / "x.pt")
    assert "spandrel" in str(e.value)


def test_corrupt_and_truncated_checkpoints(tmp_path: Path) -> None:
    path = save_checkpoint(EDSR(2, 1, 8), tmp_path / "m.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cannot load checkpoint"):
        load_model(tmp_path / "cut.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        load_model(tmp_path / "empty.pt")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_pickled_objects_are_not_loaded(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"head.0.weight": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="safely: it pickles the Python object print"):
        load_model(tmp_path / "evil.pt")


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    net = EDSR(2, 1, 8)
    with torch.no_grad():
        net.body[0].body[0].weight[0, 0, 0, 0] = float("nan")
    path = save_checkpoint(net, tmp_path / "nan.safetensors")
    with pytest.raises(ModelError, match="NaN or Inf"):
        load_model(path)


def test_wrong_scale_override_is_a_clear_error(tmp_path: Path) -> None:
    path = save_checkpoint(EDSR(4, 1, 8), tmp_path / "m.pt")
    with pytest.raises(ModelError, match="does not fit"):
        load_model(path, scale=2)


def test_unknown_zoo_name_and_unknown_arch() -> None:
    with pytest.raises(ModelError):
        load_model("edsr_baseline_x4", arch="nonexistent")
