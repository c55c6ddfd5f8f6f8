"""The CLI end to end on a tiny model, as a user runs it (subprocess, real entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srdeploy.models.edsr import EDSR
from srdeploy.models.loading import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def srdeploy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "srdeploy"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "srdeploy.cli"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"}
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    net = EDSR(scale=2, n_resblocks=2, n_feats=8)
    with torch.no_grad():
        for block in net.body[:-1]:
            block.body[2].weight.mul_(0.2)
    save_checkpoint(net, ws / "tiny.pt")
    rng = np.random.default_rng(0)
    for folder, n in (("calib", 3), ("hr", 2)):
        (ws / folder).mkdir()
        for i in range(n):
            base = rng.random((48, 60, 3))
            img = (255 * (0.5 * base + 0.5 * np.roll(base, 1, 0))).astype(np.uint8)
            Image.fromarray(img).save(ws / folder / f"img{i}.png")
    # the kinds of images users have: grayscale, RGBA and 16-bit
    Image.fromarray((rng.random((48, 48)) * 255).astype(np.uint8), "L").save(ws / "calib" / "gray.png")
    Image.fromarray((rng.random((48, 48, 4)) * 255).astype(np.uint8), "RGBA").save(ws / "calib" / "rgba.png")
    Image.fromarray((rng.random((48, 48)) * 65535).astype(np.uint16)).save(ws / "hr" / "deep16.png")
    (ws / "recipe.yaml").write_text(
        "name: tiny\nmodel: {path: tiny.pt}\n"
        "calib: {folder: calib, patches: 8, patch_size: 16}\n"
        "quant: {weight_bits: 8, act_bits: 8, method: mse}\n"
        "validate: {dataset: hr, reference: fp32, thresholds: {max_psnr_drop_db: 1.0, min_agreement_db: 30}}\n"
    )
    return ws


@pytest.fixture(scope="module")
def built(workspace: Path) -> Path:
    out = srdeploy("build", "--recipe", "recipe.yaml", cwd=workspace)
    assert out.returncode == 0, out.stdout + out.stderr
    return workspace / "builds" / "tiny"


def test_build_writes_the_documented_layout(built: Path) -> None:
    for rel in (
        "fp32.onnx",
        "trt/model.onnx",
        "ort/model.onnx",
        "plan.json",
        "plan.npz",
        "report.json",
        "report.md",
        "report.html",
        "recipe.yaml",
        "tiers.json",
        "manifest.json",
        "model.safetensors",
    ):
        assert (built / rel).is_file(), rel
    report = json.loads((built / "report.json").read_text())
    assert report["verdict"] == "pass"
    names = [s["execution"] for s in report["summary"]]
    assert names == ["fp32", "sim:ort", "onnxruntime:ort", "sim:trt", "onnxruntime:trt"]
    assert report["images_evaluated"] == 3
    assert report["lint"]["trt/model.onnx"]["errors"] == 0
    assert "no engine built" in report["tensorrt"]["skipped"]
    assert report["ort_fusion"]["ort/0"]["fused_integer_convs"] == report["ort_fusion"]["ort/0"]["quantized_convs"]
    passes = report["passes"]["ort/model.onnx"]
    assert [p["name"] for p in passes][:2] == ["set_float_weights", "insert_qdq[ort, tier 0]"]
    assert not list(built.parent.glob(".*partial*"))


def test_rebuild_gives_byte_identical_onnx(workspace: Path, built: Path) -> None:
    before = {p: (built / p).read_bytes() for p in ("fp32.onnx", "trt/model.onnx", "ort/model.onnx")}
    out = srdeploy("build", "--recipe", "recipe.yaml", "--out", "again", "--no-validate", cwd=workspace)
    assert out.returncode == 0, out.stderr
    for p, data in before.items():
        assert (workspace / "again" / p).read_bytes() == data, p


def test_validate_and_inspect_from_the_folder(workspace: Path, built: Path) -> None:
    out = srdeploy("validate", str(built), "--dataset", "hr", cwd=workspace)
    assert out.returncode == 0, out.stdout + out.stderr
    reports = built.with_name("tiny.validate")  # beside the build: the build folder is only read
    assert (reports / "validate.json").is_file() and (reports / "validate.junit.xml").is_file()
    assert not (built / "validate.json").exists()
    out = srdeploy("validate", str(built), "--dataset", "hr", "--max-psnr-drop", "-1", cwd=workspace)  # unmeetable
    assert out.returncode == 1
    assert "mean Y-PSNR drop" in out.stdout
    out = srdeploy("inspect", str(built), cwd=workspace)
    assert out.returncode == 0 and "body.0.body.0" in out.stdout


def test_emit_reproduces_every_graph_from_the_plan(built: Path, workspace: Path) -> None:
    for profile in ("trt", "ort"):
        out = srdeploy("emit", str(built), "--profile", profile, "--check", cwd=workspace)
        assert out.returncode == 0 and "identical" in out.stdout, out.stdout + out.stderr
    out = srdeploy("emit", str(built), "--profile", "ort", "--out", "again.onnx", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert (workspace / "again.onnx").read_bytes() == (built / "ort" / "model.onnx").read_bytes()
    out = srdeploy("emit", str(built), "--profile", "openvino", "--check", cwd=workspace)
    assert out.returncode == 2 and "profiles in this build" in out.stderr


def test_lint_trt_command(built: Path, workspace: Path) -> None:
    out = srdeploy("lint-trt", str(built / "trt" / "model.onnx"), cwd=workspace)
    assert out.returncode == 0, out.stdout + out.stderr
    out = srdeploy("lint-trt", str(built / "ort" / "model.onnx"), cwd=workspace)
    assert out.returncode == 1 and "qdq-dtype" in out.stdout


def test_adaptive_daq_refined_build_with_tiles(workspace: Path) -> None:
    out = srdeploy(
        "build",
        "--recipe",
        "recipe.yaml",
        "--out",
        "ada",
        "--set",
        "quant.weight_bits=4",
        "--set",
        "quant.act_bits=4",
        "--set",
        "quant.method=daq",
        "--set",
        "quant.adaptive.enabled=true",
        "--set",
        "quant.refine.steps=3",
        "--set",
        "quant.refine.patch_size=16",
        "--set",
        "validate.tile=8",
        "--set",
        "validate.tile_overlap=4",
        "--set",
        "validate.thresholds.max_psnr_drop_db=null",
        cwd=workspace,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    root = workspace / "ada"
    for k in range(3):
        assert (root / "trt" / f"tier-{k}.onnx").is_file() and (root / "ort" / f"tier-{k}.onnx").is_file()
    tiers = json.loads((root / "tiers.json").read_text())
    assert [t["name"] for t in tiers["tiers"]] == ["low", "base", "high"]
    assert len(tiers["selector"]["thresholds"]) == 2
    report = json.loads((root / "report.json").read_text())
    assert report["equalization"]["groups"] and report["refinement"]["steps"] == 3
    ort_row = next(s for s in report["summary"] if s["execution"] == "onnxruntime:ort")
    assert sum(ort_row["tier_usage"].values()) > 3  # tiles, not images, were routed
    assert report["quantization"]["fab"] is not None
    md = (root / "report.md").read_text()  # several tiers: tier columns, and the sub-8-bit note applies
    assert "tiers used" in md and "Sub-8-bit layers are emulated" in md
    accuracy = md.split("## Accuracy")[1].split("\n\n")[1].splitlines()
    assert len({line.count("|") for line in accuracy}) == 1, accuracy  # bicubic row included
    # INT4 weights in the ort files (opset 21), int8 containers in the trt files
    import onnx

    ort_model = onnx.load(str(root / "ort" / "tier-0.onnx"))
    assert any(i.data_type == onnx.TensorProto.INT4 for i in ort_model.graph.initializer)
    assert ort_model.opset_import[0].version >= 21
    for tier in ("0", "2"):  # every tier of every profile reproduces from the plan
        for profile in ("trt", "ort"):
            out = srdeploy("emit", "ada", "--profile", profile, "--tier", tier, "--check", cwd=workspace)
            assert out.returncode == 0, out.stdout + out.stderr


def test_version() -> None:
    out = srdeploy("--version", cwd=REPO)
    assert out.returncode == 0 and out.stdout.startswith("srdeploy ")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.path=missing.pt", "checkpoint not found"),
        ("calib.folder=empty", "no images"),
        ("quant.act_bits=1", "act_bits"),
        ("validate.dataset=nowhere", "neither an image folder nor a named set"),
    ],
)
def test_bad_input_fails_cleanly_without_output(workspace: Path, override: str, message: str) -> None:
    (workspace / "empty").mkdir(exist_ok=True)
    out = srdeploy("build", "--recipe", "recipe.yaml", "--out", "bad", "--set", override, cwd=workspace)
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (workspace / "bad").exists()
    assert not list(workspace.glob(".bad*"))


def test_validate_refuses_a_folder_that_is_not_a_build(workspace: Path) -> None:
    out = srdeploy("validate", str(workspace), cwd=workspace)
    assert out.returncode == 2 and "not an srdeploy build folder" in out.stderr


def test_eval_command_takes_any_loadable_checkpoint(workspace: Path) -> None:
    from official_layouts import compact_shapes, random_state

    torch.save({"params": random_state(compact_shapes(2, 8, 2))}, workspace / "compact_x2.pth")
    out = srdeploy("eval", "--model", "compact_x2.pth", "--dataset", "hr", "--max-images", "1", cwd=workspace)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "compact_x2 (compact x2)" in out.stdout
    out = srdeploy("eval", "--model", "compact_x2.pth", "--arch", "rrdbnet", "--dataset", "hr", cwd=workspace)
    assert out.returncode == 2 and "'rrdbnet' layout" in out.stderr and "Traceback" not in out.stderr
