"""The layout of a build folder, and reading one back (with version checks)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srdeploy.errors import BuildFolderError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BuildFolder:
    root: Path

    @property
    def fp32_onnx(self) -> Path:
        return self.root / "fp32.onnx"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def tiers_json(self) -> Path:
        return self.root / "tiers.json"

    @property
    def model_weights(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def model_json(self) -> Path:
        return self.root / "model.json"

    def profile_model(self, profile: str, tier: int | None = None) -> Path:
        return self.root / profile / ("model.onnx" if tier is None else f"tier-{tier}.onnx")

    def profile_models(self, profile: str) -> dict[int, Path]:
        """tier -> path for a profile (a single-tier build maps tier 0 -> model.onnx)."""
        folder = self.root / profile
        if (folder / "model.onnx").is_file():
            return {0: folder / "model.onnx"}
        out = {}
        for p in sorted(folder.glob("tier-*.onnx")):
            out[int(p.stem.split("-")[1])] = p
        return out

    def profile_engines(self, profile: str) -> dict[int, Path]:
        """tier -> TensorRT engine (<profile>/engine.plan or <profile>/tier-<k>.plan) where built."""
        folder = self.root / profile
        if (folder / "engine.plan").is_file():
            return {0: folder / "engine.plan"}
        return {int(p.stem.split("-")[1]): p for p in sorted(folder.glob("tier-*.plan"))}

    def manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.is_file():
            raise BuildFolderError(
                f"{self.root} is not an srdeploy build folder (no {MANIFEST})",
                "pass the folder that `srdeploy build` wrote (default builds/<recipe name>)",
            )
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise BuildFolderError(f"{path} is corrupt: {exc}", "rebuild the folder") from exc
        if data.get("format_version") != FORMAT_VERSION:
            raise BuildFolderError(
                f"{self.root} was written with build format {data.get('format_version')} "
                f"(srdeploy {data.get('srdeploy_version')}); this srdeploy reads format {FORMAT_VERSION}",
                "rebuild it with this version: srdeploy build --recipe <its recipe.yaml>",
            )
        return data

    def verify(self) -> dict[str, Any]:
        """Check the manifest's checksums; raise naming the first missing or changed file."""
        data = self.manifest()
        for rel, digest in data.get("files", {}).items():
            p = self.root / rel
            if not p.is_file():
                raise BuildFolderError(f"{self.root}: {rel} is missing", "rebuild the folder")
            if sha256_file(p) != digest:
                raise BuildFolderError(f"{self.root}: {rel} was modified after the build", "rebuild the folder")
        return data


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(root: Path, extra: dict[str, Any]) -> Path:
    from srdeploy import __version__

    files = {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }
    data = dict(format_version=FORMAT_VERSION, srdeploy_version=__version__, **extra, files=files)
    path = root / MANIFEST
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path
