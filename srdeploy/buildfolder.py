"""The layout of a build folder, reading one back (version and range checks), and publishing one.

Publishing policy (:func:`publish_build`): an output folder is replaced only when it is absent,
empty, or an srdeploy build whose manifest lists every file in it; anything else is refused before
the build starts and left untouched. A build whose validation verdict is ``fail`` never replaces
``DIR``: it is written to ``DIR.failed/`` for inspection, and ``DIR`` keeps the previous build (or
stays absent). A build that passes (or was not validated) replaces ``DIR`` and removes an outdated
``DIR.failed/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srdeploy.errors import BuildFolderError, OutputError
from srdeploy.fsutil import Log, clean_stale, ensure_parent, locked, output_path, staging_folder, swap_in

FORMAT_VERSION = 1
FLOAT_TIER_FILE = "float.onnx"
MANIFEST = "manifest.json"
FAILED_SUFFIX = ".failed"
KINDS = {"build": "build folder", "validate-report": "validation report folder"}


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

    def profile_float_model(self, profile: str) -> Path:
        """The float tier's graph (quant.float_tier): the unquantized network of the profile."""
        return self.root / profile / FLOAT_TIER_FILE

    def profile_models(self, profile: str) -> dict[int, Path]:
        """tier -> path for a profile (a single bit tier maps tier 0 -> model.onnx; the float tier, if built,
        is the next index after the bit tiers)."""
        folder = self.root / profile
        if (folder / "model.onnx").is_file():
            out = {0: folder / "model.onnx"}
        else:
            out = {int(p.stem.split("-")[1]): p for p in sorted(folder.glob("tier-*.onnx"))}
        if (folder / FLOAT_TIER_FILE).is_file():
            out[len(out)] = folder / FLOAT_TIER_FILE
        return out

    def profile_engines(self, profile: str) -> dict[int, Path]:
        """tier -> TensorRT engine (<profile>/engine.plan or <profile>/tier-<k>.plan) where built."""
        folder = self.root / profile
        if (folder / "engine.plan").is_file():
            return {0: folder / "engine.plan"}
        return {int(p.stem.split("-")[1]): p for p in sorted(folder.glob("tier-*.plan"))}

    def manifest(self) -> dict[str, Any]:
        from srdeploy.metadata import check_manifest, read_json

        path = self.root / MANIFEST
        if not path.is_file():
            raise BuildFolderError(
                f"{self.root} is not an srdeploy build folder (no {MANIFEST})",
                "pass the folder that `srdeploy build` wrote (default builds/<recipe name>)",
            )
        data = read_json(path, BuildFolderError, "manifest")
        if not isinstance(data, dict):
            raise BuildFolderError(f"{path} is not an srdeploy manifest (not a JSON object)", "rebuild the folder")
        if data.get("format_version") != FORMAT_VERSION:
            raise BuildFolderError(
                f"{self.root} was written with build format {data.get('format_version')} "
                f"(srdeploy {data.get('srdeploy_version')}); this srdeploy reads format {FORMAT_VERSION}",
                "rebuild it with this version: srdeploy build --recipe <its recipe.yaml>",
            )
        check_manifest(data, path)
        if data.get("kind", "build") != "build":
            raise BuildFolderError(
                f"{self.root} is a {KINDS.get(data['kind'], data['kind'])}, not a build folder",
                "pass the folder that `srdeploy build` wrote",
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


def walk_files(root: Path) -> list[str]:
    """Every entry under ``root`` that is not a real folder (files, links, sockets), relative, sorted."""
    found = []
    for top, dirs, files in os.walk(root, onerror=_raise):
        here = Path(top)
        found += [str((here / n).relative_to(root)) for n in files]
        found += [str((here / n).relative_to(root)) for n in dirs if (here / n).is_symlink()]
    return sorted(found)


def _raise(exc: OSError) -> None:
    raise exc


def _owned_files(path: Path, kind: str) -> set[str] | None:
    """The files the srdeploy manifest in ``path`` lists, or None if it has no srdeploy manifest."""
    from srdeploy.metadata import is_srdeploy_manifest

    try:
        data = json.loads((path / MANIFEST).read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not is_srdeploy_manifest(data):
        return None
    found = data.get("kind", "build")
    if found != kind:
        raise OutputError(
            f"{path} is an srdeploy {KINDS.get(found, found)}, not a {KINDS[kind]}; it is not replaced",
            "pass another output folder",
        )
    return set(data["files"])


def check_replaceable(path: Path, kind: str = "build") -> None:
    """Raise OutputError unless ``path`` is absent, an empty folder, or an srdeploy output of
    ``kind`` whose manifest lists every file in it (so nothing a user put there can be deleted)."""
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        raise OutputError(f"{path} is a symbolic link", "pass the folder it points to; srdeploy does not replace links")
    if not path.is_dir():
        raise OutputError(
            f"{path} is an existing file, not a folder", "pass a folder path; srdeploy never replaces a file"
        )
    try:
        files = walk_files(path)
    except OSError as exc:
        raise OutputError(
            f"cannot read {path}: {exc.strerror or exc}", "pass a folder you can read and write"
        ) from None
    if not files:
        return
    owned = _owned_files(path, kind)
    if owned is None:
        raise OutputError(
            f"{path} is not empty and is not an srdeploy {KINDS[kind]} (no srdeploy {MANIFEST}); it is not replaced",
            "pass a new or empty folder; srdeploy replaces only its own outputs",
        )
    unknown = [f for f in files if f not in owned and f != MANIFEST]
    if unknown:
        listed = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise OutputError(
            f"{path} holds {len(unknown)} file(s) srdeploy did not write ({listed}); replacing it would delete them",
            "move them out of the folder, or pass another output folder",
        )


def failed_path(out: Path) -> Path:
    return out.with_name(out.name + FAILED_SUFFIX)


@dataclass
class BuildStaging:
    """What :func:`publish_build` yields: fill ``root``, set ``verdict``; ``published`` after."""

    root: Path
    verdict: str | None = None
    published: Path | None = None


@contextmanager
def publish_build(out: str | os.PathLike[str], log: Log | None = None) -> Iterator[BuildStaging]:
    """Stage a build beside ``out`` and publish it by the policy in this module's docstring.

    Refusals (``out`` or ``out.failed`` not replaceable, unwritable, locked by another build)
    happen before the block runs. On an exception or signal the staged folder is removed.
    """
    target = output_path(out)
    failed = failed_path(target)
    ensure_parent(target)
    with locked(target):
        clean_stale(target, log)
        clean_stale(failed, log)
        check_replaceable(target)
        check_replaceable(failed)
        with staging_folder(target) as tmp:
            staging = BuildStaging(tmp)
            yield staging
            dest = failed if staging.verdict == "fail" else target
            check_replaceable(dest)
            swap_in(tmp, dest)
            if dest == target and failed.is_dir() and not failed.is_symlink():
                check_replaceable(failed)
                shutil.rmtree(failed, ignore_errors=True)
            staging.published = _shown(dest)


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when it is inside it (as users type it)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
