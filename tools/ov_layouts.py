#!/usr/bin/env python
"""Which Q/DQ layout OpenVINO's CPU plugin runs best: variants made by editing copies of a build's
emitted graphs, timed round-robin in OpenVINO (and ORT), with agreement against the fp32 output.

    python tools/ov_layouts.py /tmp/ov_edsr --size 128 --repeats 5 --json docs/results/ov_layouts_edsr.json

Variants (names as in docs/OPENVINO.md):
  ort            the `ort` profile as built: uint8 asymmetric activations, Q/DQ on conv inputs,
                 conv outputs and residual skips
  ort-no-outq    `ort` without the Q/DQ pairs on conv outputs that feed a residual Add or a
                 DepthToSpace (so: conv inputs + skips only, still uint8 asymmetric)
  trt            the `trt` profile as built: int8 symmetric on conv inputs + skips, FP16 float regions
  trt-f32        `trt` with its FP16 float regions turned back to fp32
  trt-f32-fskip  `trt-f32` with every residual Add reading the float (un-quantized) skip tensor;
                 the skip Q/DQ stays only where a conv reads it
The agreement is the PSNR (dB, RGB [0,1]) of each output against fp32.onnx in ORT on a real LR
image; latency is the median of round-robin runs on a random LR input.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import markdown_table, save_json

from srdeploy.bench import interleaved_ms, machine_info, make_runner

REPO = Path(__file__).resolve().parents[1]


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def _bypass(graph: onnx.GraphProto, q: onnx.NodeProto, dq: onnx.NodeProto) -> None:
    """Remove a Q -> DQ pair: readers of the DQ output read the Q input instead."""
    src, dst = q.input[0], dq.output[0]
    for n in graph.node:
        for k, name in enumerate(n.input):
            if name == dst:
                n.input[k] = src
    graph.node.remove(q)
    graph.node.remove(dq)


def drop_output_q(model: onnx.ModelProto) -> onnx.ModelProto:
    """ort -> ort-no-outq: drop conv-output Q/DQ pairs read by an Add or a DepthToSpace."""
    g = model.graph
    users = _consumers(g)
    for q in [n for n in g.node if n.op_type == "QuantizeLinear" and ".weight.output" in n.name]:
        (dq,) = users[q.output[0]]
        if all(u.op_type in ("Add", "DepthToSpace") for u in users[dq.output[0]]):
            _bypass(g, q, dq)
    return model


def to_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """trt -> trt-f32: FP16 initializers, Casts and value types back to float32."""
    g = model.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT16:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    for cast in [n for n in g.node if n.op_type == "Cast"]:
        (src,), (dst,) = cast.input, cast.output
        for n in g.node:
            for k, name in enumerate(n.input):
                if name == dst:
                    n.input[k] = src
        for o in g.output:
            if o.name == dst:
                o.name = src
        g.node.remove(cast)
    for vi in [*g.value_info, *g.input, *g.output]:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT16:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT
    for n in g.node:  # Constant nodes holding fp16 values
        for a in n.attribute:
            if a.name == "value" and a.t.data_type == TensorProto.FLOAT16:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float32)))
    return model


def float_skips(model: onnx.ModelProto) -> onnx.ModelProto:
    """trt-f32 -> trt-f32-fskip: residual Adds read the skip before its Q/DQ."""
    g = model.graph
    users = _consumers(g)
    for q in [n for n in g.node if n.op_type == "QuantizeLinear" and n.name.endswith(".skip:QuantizeLinear")]:
        (dq,) = users[q.output[0]]
        for add in [u for u in users[dq.output[0]] if u.op_type == "Add"]:
            for k, name in enumerate(add.input):
                if name == dq.output[0]:
                    add.input[k] = q.input[0]
        if not any(u.op_type != "Add" for u in users[dq.output[0]]):
            _bypass(g, q, dq)
    return model


def variants(build: Path, tmp: Path) -> dict[str, Path]:
    out = {"ort": build / "ort" / "model.onnx", "trt": build / "trt" / "model.onnx"}
    edits = {
        "ort-no-outq": ("ort", [drop_output_q]),
        "trt-f32": ("trt", [to_fp32]),
        "trt-f32-fskip": ("trt", [to_fp32, float_skips]),
    }
    for name, (base, fns) in edits.items():
        model = onnx.load(str(out[base]))
        for fn in fns:
            model = fn(model)
        onnx.checker.check_model(model)
        out[name] = tmp / f"{name}.onnx"
        onnx.save(model, str(out[name]))
    return out


def real_input(size: int) -> np.ndarray:
    from PIL import Image

    img = np.asarray(Image.open(REPO / "calib_data" / "eval" / "ocv_baboon.png").convert("RGB"), dtype=np.float32)
    return np.ascontiguousarray(img[:size, :size].transpose(2, 0, 1)[None] / 255.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", type=Path)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--runtimes", default="openvino,onnxruntime")
    ap.add_argument("--save", type=Path, default=None, help="keep the variant graphs in this folder")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.save or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        graphs = {"fp32": args.build / "fp32.onnx", **variants(args.build, folder)}
        runners = {
            f"{rt}:{v}": make_runner(rt, p, args.threads) for rt in args.runtimes.split(",") for v, p in graphs.items()
        }
        probe = real_input(min(args.size, 128))
        ref = make_runner("onnxruntime", graphs["fp32"], args.threads)(probe)
        agreement = {k: psnr(f(probe), ref) for k, f in runners.items()}
        x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
        times = interleaved_ms(runners, x, warmup=1, repeats=args.repeats)
    rows = []
    for key, t in times.items():
        rt, variant = key.split(":", 1)
        base = statistics.median(times[f"{rt}:fp32"])
        rows.append(dict(runtime=rt, variant=variant, median_ms=statistics.median(t), times_ms=t,
                         vs_fp32=base / statistics.median(t), agreement_db=agreement[key]))  # fmt: skip
    cols = [("runtime", "runtime", ""), ("variant", "layout", ""), ("median_ms", "ms", ".0f"),
            ("vs_fp32", "vs same-runtime fp32", ".2f"), ("agreement_db", "PSNR vs fp32 (dB)", ".2f")]  # fmt: skip
    print(markdown_table(rows, cols))
    if args.json:
        cmd = "python tools/ov_layouts.py " + " ".join(sys.argv[1:])
        doc = dict(command=cmd, build=str(args.build), size=args.size, threads=args.threads, rows=rows)
        save_json(args.json, dict(doc, machine=machine_info()))


if __name__ == "__main__":
    main()
