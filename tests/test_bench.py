"""srdeploy.bench and `srdeploy bench` on a tiny real build: structure and sanity, not speed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from runtime.helpers import make_build, make_checkpoint
from typer.testing import CliRunner

from srdeploy.backends import openvino
from srdeploy.bench import bench, build_graphs, interleaved_ms, machine_info
from srdeploy.cli import app
from srdeploy.errors import BuildFolderError, SrdeployError

HAS_OV = openvino.capabilities().available


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench_build")
    return make_build(root, "tiny_bench", make_checkpoint(root / "tiny.safetensors", 1))


def test_graphs_are_fp32_then_each_profile(build: Path) -> None:
    graphs = build_graphs(build)
    assert [g.label for g in graphs] == ["fp32", "ort", "trt"]
    assert [g.path.relative_to(build).as_posix() for g in graphs] == ["fp32.onnx", "ort/model.onnx", "trt/model.onnx"]


def test_bench_times_every_runtime_and_graph(build: Path) -> None:
    result = bench(build, size=16, threads=1, repeats=3, warmup=1)
    runtimes = ["onnxruntime", "openvino"] if HAS_OV else ["onnxruntime"]
    assert [(r["runtime"], r["graph"]) for r in result["rows"]] == [
        (rt, g) for rt in runtimes for g in ("fp32", "ort", "trt")
    ]
    for r in result["rows"]:
        assert len(r["times_ms"]) == 3 and r["min_ms"] <= r["median_ms"] <= max(r["times_ms"])
        assert r["lr_mp_per_s"] == pytest.approx(16 * 16 / 1e6 / (r["median_ms"] / 1e3))
        fp32 = next(f for f in result["rows"] if f["runtime"] == r["runtime"] and f["graph"] == "fp32")
        assert r["vs_runtime_fp32"] == pytest.approx(fp32["median_ms"] / r["median_ms"])
    assert all(r["vs_runtime_fp32"] == 1.0 for r in result["rows"] if r["graph"] == "fp32")
    if HAS_OV:
        assert result["skipped"] == []
    else:
        assert [s["runtime"] for s in result["skipped"]] == ["openvino"]
    m = result["machine"]
    assert m["cpu"] and m["versions"]["onnxruntime"] and m["cores"] >= 1
    json.dumps(result)  # the CLI's --json output must serialize


def test_round_robin_order() -> None:
    calls: list[str] = []
    runners = {k: (lambda x, k=k: calls.append(k) or x) for k in ("a", "b")}
    times = interleaved_ms(runners, x=None, warmup=1, repeats=2)  # type: ignore[arg-type]
    # warm-up a, b; then two rounds a, b (not a, a, b, b: drift would then hit one runner only)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert {k: len(v) for k, v in times.items()} == {"a": 2, "b": 2}


def test_isa_flags_come_from_cpuinfo() -> None:
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").is_file() else []
    assert set(machine_info()["isa"]) <= set(flags)
    if "avx2" in flags:
        assert "avx2" in machine_info()["isa"]


def test_bad_input(build: Path, tmp_path: Path) -> None:
    with pytest.raises(SrdeployError, match="size"):
        bench(build, size=2)
    with pytest.raises(BuildFolderError, match="not found"):
        bench(tmp_path / "nothing")
    with pytest.raises(SrdeployError, match="unknown runtime"):
        bench(build, size=16, repeats=1, runtimes=("tvm",))
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(build / "manifest.json", bare)
    with pytest.raises(BuildFolderError, match=r"no fp32\.onnx"):
        build_graphs(bare)


def test_cli_json_and_table(build: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["bench", str(build), "--size", "16", "--threads", "1", "--repeats", "1", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["size"] == 16 and doc["threads"] == 1 and doc["rows"]
    res = runner.invoke(app, ["bench", str(build), "--size", "16", "--threads", "1", "--repeats", "1"])
    assert res.exit_code == 0, res.output
    assert "LR MP/s" in res.output and "fp32" in res.output
