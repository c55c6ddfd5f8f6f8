"""Helpers for the CLI battery: run srdeploy (in this process or as a subprocess), snapshot a folder,
assert the one-line error contract, re-sign a tampered build folder, write special images.

In-process runs go through the same entry point as the console script (srdeploy.entry.run) with
stdout/stderr captured; the signal and printer tests use real subprocesses.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

BATTERY_RECIPE = (
    "name: tiny\nmodel: {path: tiny.pt}\n"
    "calib: {folder: calib, patches: 4, patch_size: 16}\n"
    "tensorrt: {enabled: false}\n"
    "validate: {dataset: hr, reference: fp32, thresholds: {max_psnr_drop_db: 10.0, min_agreement_db: 20}}\n"
)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


def run_cli(*args: str, cwd: Path) -> Result:
    """srdeploy ARGS in this process (entry.run: the console script's path), in folder ``cwd``."""
    from srdeploy.cli import app
    from srdeploy.entry import run

    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(app, list(args))
    finally:
        os.chdir(before)
    return Result(code, out.getvalue(), err.getvalue())


def cli_command() -> list[str]:
    exe = Path(sys.executable).parent / "srdeploy"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "srdeploy.cli"]


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """srdeploy ARGS as a subprocess with SIGINT at its default (a background shell may ignore it);
    ``env``: variables added to the environment."""
    import signal

    return subprocess.Popen(
        [*cli_command(), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def run_sub(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> Result:
    proc = start_cli(*args, cwd=cwd, env=env)
    out, err = proc.communicate(timeout=timeout)
    return Result(proc.returncode, out, err)


def assert_one_error(res: Result, code: int, *fragments: str) -> str:
    """Exit ``code``, exactly one ``error:`` line holding every fragment, no traceback anywhere."""
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err + res.out, res.err
    assert len(res.errors) == 1, res.err
    line = res.errors[0]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> content digest (files), link target (links) or 'dir', for everything under root."""
    state: dict[str, str] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(top) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                state[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def assert_kept(before: dict[str, str], root: Path) -> None:
    """Everything that was under ``root`` is still there, unchanged."""
    after = snapshot(root)
    changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
    assert not changed, changed


def leftovers(folder: Path) -> list[str]:
    """Temporary, partial or lock entries srdeploy may have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".")


def resign(build: Path) -> None:
    """Recompute the manifest's checksums after a deliberate edit (what a tamperer would do)."""
    from srdeploy.buildfolder import MANIFEST, write_manifest

    data = json.loads((build / MANIFEST).read_text())
    keep = {k: v for k, v in data.items() if k not in ("files", "format_version", "srdeploy_version")}
    write_manifest(build, keep)


def edit_json(path: Path, change: object) -> None:
    """Apply ``change(doc)`` (returns the new document) to a JSON file."""
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(change(doc)))  # type: ignore[operator]


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` (Pillow's bomb guard reads only the header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def make_workspace(ws: Path) -> Path:
    """A tiny EDSR x2 checkpoint, calibration and HR images, and a recipe (seconds to build)."""
    import numpy as np
    import torch
    from PIL import Image

    from srdeploy.models.edsr import EDSR
    from srdeploy.models.loading import save_checkpoint

    torch.manual_seed(0)
    net = EDSR(scale=2, n_resblocks=1, n_feats=8)
    with torch.no_grad():
        net.body[0].body[2].weight.mul_(0.2)
    save_checkpoint(net, ws / "tiny.pt")
    rng = np.random.default_rng(0)
    for folder in ("calib", "hr"):
        (ws / folder).mkdir()
        for i in range(2):
            base = rng.random((40, 48, 3))
            img = (255 * (0.5 * base + 0.5 * np.roll(base, 1, 0))).astype(np.uint8)
            Image.fromarray(img).save(ws / folder / f"img{i}.png")
    (ws / "recipe.yaml").write_text(BATTERY_RECIPE)
    return ws
