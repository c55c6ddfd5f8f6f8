"""Cross-check srdeploy's `trt` graph against NVIDIA ModelOpt's INT8 quantization of the same fp32.onnx.

ModelOpt (`nvidia-modelopt[onnx]`) pulls a CUDA torch, onnxruntime-gpu and cupy, so it lives in
its own venv, never the project's; srdeploy is imported from this source tree:

    python3 -m venv .venv-modelopt && .venv-modelopt/bin/pip install 'nvidia-modelopt[onnx]'
    .venv/bin/srdeploy build --recipe recipes/int8_edsr_x4.yaml --out /tmp/trt_edsr --no-validate
    .venv-modelopt/bin/python tools/crosscheck_modelopt.py /tmp/trt_edsr \\
        --out docs/results/modelopt_crosscheck.json

Steps: the build's calibration LR patches, drawn again from its recipe exactly as the build drew
them, saved as one .npy (ModelOpt's --calibration_data_path convention: an array fed to the single
input); `python -m modelopt.onnx.quantization --quantize_mode int8` on fp32.onnx with its defaults
(entropy calibration, FP16 float regions) and with `--calibration_method max`; a node-by-node
diff of Q/DQ placement against trt/model.onnx (srdeploy.backends.qdq_layout); srdeploy's TensorRT
lint on every graph; Y-PSNR of every graph against fp32.onnx with ONNX Runtime CPU on an image set,
run by the project venv's interpreter (--eval-python), whose onnxruntime is the one srdeploy ships.
Nothing here needs TensorRT or a GPU. docs/TENSORRT.md explains the findings.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # srdeploy from this source tree: it is not installed in the ModelOpt venv
sys.path.insert(0, str(ROOT / "tools"))

from bench_common import save_json  # noqa: E402

from srdeploy.backends.qdq_layout import diff, graph_facts, roles, summarize_diff  # noqa: E402
from srdeploy.data.calib_inputs import calib_patches  # noqa: E402
from srdeploy.data.sets import load_pairs  # noqa: E402
from srdeploy.passes.lint_trt import lint_trt  # noqa: E402
from srdeploy.quant.plan_io import load_plan  # noqa: E402
from srdeploy.recipe import load_recipe  # noqa: E402
from srdeploy.validate.metrics import psnr_y  # noqa: E402

VARIANTS = {"modelopt_default": [], "modelopt_max": ["--calibration_method", "max"]}
LABELS = ("srdeploy", "modelopt")


def cpu_facts() -> dict[str, Any]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = sorted(set(re.findall(r"\b(avx512_vnni|avx_vnni|avx2)\b", text)))
    return dict(
        model=model.group(1) if model else platform.processor(),
        isa=flags,
        cores=len(re.findall("^processor", text, re.M)),
    )


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("nvidia-modelopt", "onnxruntime-gpu", "onnxruntime", "onnx", "torch", "numpy", "srdeploy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


def calibration_patches(build: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """The build's calibration patches (same recipe, same seed, same function as pipeline.build)."""
    recipe = load_recipe(build / "recipe.yaml")
    scale = load_plan(build / "plan.json").model.scale
    source = recipe.calib.source
    patches = calib_patches(recipe.calib, scale, recipe.calib.patch_size, recipe.calib.patches, recipe.seed)
    path = work / "calib_lr.npy"
    np.save(path, patches)
    sha = hashlib.sha256(patches.tobytes()).hexdigest()
    return path, dict(path=str(path), shape=list(patches.shape), source=source, seed=recipe.seed, sha256=sha)


def run_modelopt(fp32: Path, calib: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "modelopt.onnx.quantization", "--onnx_path", str(fp32), "--quantize_mode", "int8"]
    cmd += ["--calibration_data_path", str(calib), "--output_path", str(out), *extra]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    (out.with_suffix(".log")).write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        sys.exit(f"ModelOpt failed ({run.returncode}); log: {out.with_suffix('.log')}")
    return dict(command=" ".join(cmd[1:]), seconds=round(seconds, 1), log=str(out.with_suffix(".log")))


def conv_roles(build: Path) -> dict[str, str]:
    """Conv node -> role from the plan (head, body, upsampler, tail, fixed mean shift)."""
    names = {"fixed": "mean-shift conv"}
    return {f"{x.module}:Conv": names.get(x.role, f"{x.role} conv") for x in load_plan(build / "plan.json").layers}


def accuracy(graphs: dict[str, Path], fp32: Path, dataset: str, scale: int, threads: int) -> dict[str, Any]:
    """Per graph: mean and worst-image Y-PSNR drop against fp32.onnx (ONNX Runtime CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    sessions = {k: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for k, p in graphs.items()}
    ref = ort.InferenceSession(str(fp32), opts, providers=["CPUExecutionProvider"])
    pairs = load_pairs(dataset, scale)
    drops: dict[str, dict[str, float]] = {k: {} for k in graphs}
    base: dict[str, float] = {}
    for p in pairs:
        x = np.ascontiguousarray(p.lr.transpose(2, 0, 1)[None], dtype=np.float32)
        base[p.name] = psnr_y(ref.run(None, {"input": x})[0][0].transpose(1, 2, 0), p.hr, scale)
        for k, s in sessions.items():
            drops[k][p.name] = base[p.name] - psnr_y(s.run(None, {"input": x})[0][0].transpose(1, 2, 0), p.hr, scale)
    out: dict[str, Any] = {"fp32_mean_psnr_y": float(np.mean(list(base.values()))), "images": len(pairs)}
    for k, d in drops.items():
        worst = max(d, key=lambda n: d[n])
        out[k] = dict(mean_drop_db=float(np.mean(list(d.values()))), worst_drop_db=d[worst], worst_image=worst)
        out[k]["per_image_drop_db"] = {n: round(v, 4) for n, v in d.items()}
    return out


def accuracy_in(python: Path, graphs: dict[str, Path], build: Path, dataset: str, threads: int, work: Path) -> Any:
    """``accuracy`` run by another interpreter (the project venv): the ModelOpt venv's older
    onnxruntime-gpu runs these FP16 QDQ graphs far less exactly on the CPU (docs/TENSORRT.md)."""
    out = work / "accuracy.json"
    cmd = [str(python), __file__, str(build), "--accuracy-only", str(out), "--dataset", dataset]
    cmd += ["--threads", str(threads), *(f"--graph={k}={v}" for k, v in graphs.items())]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def accuracy_only(args: argparse.Namespace) -> int:
    import onnxruntime

    graphs = {k: Path(v) for k, v in (g.split("=", 1) for g in args.graph)}
    scale = int(load_plan(args.build / "plan.json").model.get("scale") or 4)
    result = accuracy(graphs, args.build / "fp32.onnx", args.dataset, scale, args.threads)
    result.update(dataset=args.dataset, onnxruntime=onnxruntime.__version__, python=sys.executable)
    save_json(args.accuracy_only, result)
    return 0


def lint_summary(model: onnx.ModelProto) -> dict[str, Any]:
    report = lint_trt(model)
    return dict(summary=report.summary(), ok=report.ok, findings=[f.__dict__ for f in report.findings])


def compare(fp32: onnx.ModelProto, ours: onnx.ModelProto, theirs: onnx.ModelProto, build: Path) -> dict[str, Any]:
    role = {**roles(fp32), **conv_roles(build)}
    rows = diff(fp32, ours, theirs, LABELS)
    for r in rows:
        r["role"] = role.get(r["node"], r["role"])
    return dict(kinds=summarize_diff(rows, LABELS), rows=rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", type=Path, help="a build folder with fp32.onnx, trt/model.onnx, plan.json, recipe.yaml")
    ap.add_argument("--out", type=Path, default=Path("docs/results/modelopt_crosscheck.json"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/modelopt_crosscheck"), help="ModelOpt outputs and logs")
    ap.add_argument("--dataset", default="eval", help="named set or folder for the accuracy check")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-python", type=Path, default=ROOT / ".venv" / "bin" / "python", help="runs the accuracy")
    ap.add_argument("--local-accuracy", action="store_true", help="also measure with this venv's onnxruntime")
    ap.add_argument("--accuracy-only", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--graph", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.accuracy_only:
        return accuracy_only(args)
    build, work = args.build, args.work
    work.mkdir(parents=True, exist_ok=True)
    fp32_path, ours_path = build / "fp32.onnx", build / "trt" / "model.onnx"
    calib_path, calib = calibration_patches(build, work)
    fp32, ours = onnx.load(str(fp32_path)), onnx.load(str(ours_path))
    result: dict[str, Any] = dict(
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        date=time.strftime("%Y-%m-%d"),
        cpu=cpu_facts(),
        versions=versions(),
        build=dict(folder=str(build), recipe=load_recipe(build / "recipe.yaml").name),
        calibration=calib,
        srdeploy=dict(graph=graph_facts(ours), lint=lint_summary(ours)),
    )
    graphs = {"srdeploy_trt": ours_path}
    for name, extra in VARIANTS.items():
        out = work / f"{name}.onnx"
        run = run_modelopt(fp32_path, calib_path, out, extra)
        theirs = onnx.load(str(out))
        result[name] = dict(run=run, graph=graph_facts(theirs), lint=lint_summary(theirs))
        result[name]["placement"] = compare(fp32, ours, theirs, build)
        graphs[name] = out
    default, maxcal = (onnx.load(str(graphs[k])) for k in VARIANTS)
    result["modelopt_variants_same_placement"] = not diff(fp32, default, maxcal)  # calibration moves scales only
    result["accuracy"] = accuracy_in(args.eval_python, graphs, build, args.dataset, args.threads, work)
    if args.local_accuracy:  # the same, with the ModelOpt venv's onnxruntime, to show how far it is off
        import onnxruntime

        scale = load_plan(build / "plan.json").model.scale
        local = accuracy(graphs, fp32_path, args.dataset, scale, args.threads)
        result["accuracy_modelopt_venv"] = dict(local, onnxruntime=onnxruntime.__version__, dataset=args.dataset)
    save_json(args.out, result)
    for name in VARIANTS:
        for k in result[name]["placement"]["kinds"]:
            print(f"{name}: {k['role']:<18} {k['what']:<16} srdeploy={k['srdeploy']!s:<34} modelopt={k['modelopt']}")
    for k, v in result["accuracy"].items():
        if isinstance(v, dict):
            print(f"{k}: mean drop {v['mean_drop_db']:.3f} dB, worst {v['worst_drop_db']:.3f} dB ({v['worst_image']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
