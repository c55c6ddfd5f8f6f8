"""Loading what the Upscaler runs: one ONNX file or a tier set, execution providers, sessions.

A build folder is checked before anything is loaded (format version via the manifest, and the
checksums of the files actually used), because an app that silently runs a truncated or foreign
model produces wrong pictures rather than errors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srdeploy.backends.ort import OrtRunner
from srdeploy.buildfolder import BuildFolder, sha256_file
from srdeploy.errors import BackendUnavailable, BuildFolderError
from srdeploy.machine import has_vnni
from srdeploy.metadata import check_tiers_doc, read_json
from srdeploy.profiles import PROFILES, get_profile
from srdeploy.size_rules import NO_RULES, SizeRules

BACKENDS = ("onnxruntime", "openvino")  # what the app runtime can run (TensorRT: through ORT's provider)
Provider = str | tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class TierModel:
    index: int
    name: str
    fab: float | None  # feature-average bits from tiers.json (None for a bare .onnx)
    path: Path


@dataclass(frozen=True)
class ModelSet:
    """The models of one profile: tier -> file, plus the selector that chooses between them."""

    tiers: dict[int, TierModel]
    default_tier: int
    selector: dict[str, Any] | None
    scale: int | None  # None: unknown until probed (bare .onnx)
    source: Path
    size_rules: SizeRules = NO_RULES  # from tiers.json; a bare .onnx carries none (Upscaler(size_rules=...))


def load_model_set(path: str | os.PathLike[str], profile: str = "ort") -> ModelSet:
    """``path``: a build folder, a tiers.json, or one .onnx file."""
    if profile not in PROFILES:
        raise BuildFolderError(f"unknown profile {profile!r}", f"use one of {', '.join(PROFILES)}")
    path = Path(path)
    if path.is_dir():
        return _from_build(path, profile)
    if not path.is_file():
        raise BuildFolderError(f"model not found: {path}", "pass a build folder, its tiers.json, or an .onnx file")
    if path.suffix == ".json":
        return _from_tiers_json(path, profile, checksums=None)
    if path.suffix not in (".onnx", ".xml"):
        raise BuildFolderError(
            f"{path} is neither an .onnx / OpenVINO .xml file nor a tiers.json", "pass the build folder itself"
        )
    return ModelSet({0: TierModel(0, path.stem, None, path)}, 0, None, None, path)


def _from_build(root: Path, profile: str) -> ModelSet:
    folder = BuildFolder(root)
    manifest = folder.manifest()  # raises BuildFolderError for foreign or older formats
    checksums = manifest.get("files", {})
    if not folder.tiers_json.is_file():
        raise BuildFolderError(f"{root} has no tiers.json", "rebuild the folder with this srdeploy version")
    _check_sum(folder.tiers_json, root, checksums)
    return _from_tiers_json(folder.tiers_json, profile, checksums)


def _check_sum(path: Path, root: Path, checksums: dict[str, str]) -> None:
    rel = Path(os.path.relpath(path, root)).as_posix()
    if rel not in checksums:
        raise BuildFolderError(f"{root}: {rel} is not listed in the manifest", "rebuild the folder")
    if sha256_file(path) != checksums[rel]:
        raise BuildFolderError(f"{root}: {rel} was modified after the build", "rebuild the folder")


def _from_tiers_json(path: Path, profile: str, checksums: dict[str, str] | None) -> ModelSet:
    doc = check_tiers_doc(read_json(path, BuildFolderError, "tiers file"), path)
    tiers = {}
    for t in doc.tiers:
        rel = t.files.get(profile)
        if rel is None:
            raise BuildFolderError(
                f"{path}: tier {t.index} has no '{profile}' model",
                f"use the profile that was built ({', '.join(t.files)}) or add it to export.profiles",
            )
        tiers[t.index] = TierModel(t.index, t.name, t.fab, path.parent / rel)
    default_tier = min(tiers) if doc.default_tier is None else doc.default_tier
    selector = None if doc.selector is None else doc.selector.model_dump()
    for t in tiers.values():
        rel = os.path.relpath(t.path, path.parent)
        if not t.path.is_file():
            raise BuildFolderError(
                f"{path.parent}: {rel} is missing",
                f"this build may not include the '{profile}' profile; rebuild, or pick another --profile",
            )
        if checksums is not None:
            _check_sum(t.path, path.parent, checksums)
    rules = NO_RULES if doc.size_rules is None else doc.size_rules.rules()
    return ModelSet(tiers, default_tier, selector, doc.scale, path, rules)


def native_profile(backend: str, built: set[str] | None = None) -> str:
    """The profile laid out for ``backend`` (the registry's: its intended backend). On a CPU that lacks what
    a profile variant is made for (``cpu_without``, e.g. VNNI) the variant is preferred where it was built."""
    own = [p for p in PROFILES.values() if p.backends[0] == backend]
    if built is not None and has_vnni() is False:
        variant = next((p.name for p in own if p.cpu_without == "vnni" and p.name in built), None)
        if variant:
            return variant
    return next(p.name for p in own if p.cpu_without is None)


def _built_profiles(tiers: Path) -> set[str]:
    try:
        return {p for t in json.loads(tiers.read_text())["tiers"] for p in t["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()  # a bare model file, or a folder load_model_set will reject with its own message


def resolve_profile(path: str | os.PathLike[str], profile: str | None, backend: str) -> tuple[str, str | None]:
    """The profile to load for ``backend`` (None: the backend's own where built, else ``ort``), and a note when
    a build without the backend's own profile runs another profile's graph instead."""
    if backend not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {backend!r}", f"use one of {', '.join(BACKENDS)}")
    if profile is not None:
        return profile, None
    tiers = Path(path) / "tiers.json" if Path(path).is_dir() else Path(path)
    built = _built_profiles(tiers)
    own, fallback = native_profile(backend, built), native_profile("onnxruntime", built)
    if own == fallback or own in built or tiers.suffix in (".xml", ".onnx"):
        return (own if own in built or own == fallback else fallback), None
    return fallback, (
        f"{path} has no '{own}' profile: running its '{fallback}' graph on {backend} "
        f"(rebuild with '{own}' in export.profiles for {backend}'s own layout)"
    )


def resolve_providers(providers: Sequence[Provider] | None, profile: str) -> list[Provider]:
    """None -> CPU; ['auto'] -> the best this onnxruntime offers; otherwise checked as given."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if providers is None:
        return ["CPUExecutionProvider"]
    if list(providers) == ["auto"]:
        return [p for p in get_profile(profile).providers if p in available] or ["CPUExecutionProvider"]
    names = [p if isinstance(p, str) else p[0] for p in providers]
    missing = [n for n in names if n not in available]
    if missing:
        raise BackendUnavailable(
            f"execution provider(s) {', '.join(missing)} not available (this onnxruntime has {', '.join(available)})",
            "replace onnxruntime by onnxruntime-gpu (pip uninstall -y onnxruntime && pip install onnxruntime-gpu) "
            "with a matching CUDA, or pass providers=['auto']",
        )
    return list(providers)


def _probe_scale(infer: Any, path: Path, rules: SizeRules = NO_RULES) -> int:
    """Scale of a bare model: run an 8x8 input (or the smallest one ``rules`` accept) and compare sizes."""
    side = rules.padded(8)
    y = infer(np.zeros((rules.batch or 1, 3, side, side), dtype=np.float32))
    if y.ndim != 4 or y.shape[2] % side or y.shape[2] != y.shape[3] or y.shape[1] != 3:
        raise BuildFolderError(f"{path} does not map (N,3,H,W) to (N,3,sH,sW)", "pass an srdeploy model")
    return y.shape[2] // side


class Session(OrtRunner):
    """The app runtime's session: CPU arena on (each call is bounded by the tile budget; backends/ort.py)."""

    def __init__(self, path: Path, threads: int | None, providers: list[Provider]) -> None:
        super().__init__(path, threads, list(providers))

    def probe_scale(self, rules: SizeRules = NO_RULES) -> int:
        return _probe_scale(self.infer, self.path, rules)


def open_session(path: Path, threads: int | None, providers: list[Provider] | None, backend: str) -> Any:
    """An ONNX Runtime Session, or an OpenVINO CPU runner with the same ``infer``/``probe_scale``."""
    if backend == "onnxruntime":
        return Session(path, threads, list(providers or ["CPUExecutionProvider"])).activate()
    from srdeploy.backends.openvino import OpenVinoRunner

    runner = OpenVinoRunner(path, threads=threads).activate()
    runner.providers = ["OpenVINO CPU"]  # type: ignore[attr-defined]
    runner.probe_scale = lambda rules=NO_RULES: _probe_scale(runner.infer, runner.path, rules)  # type: ignore[attr-defined]
    return runner
