"""Writing calib_data/: images, manifest.json, per-set categories.json, and checking them."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from calibdata import imaging, synth
from calibdata.catalogue import Spec
from calibdata.licences import LICENSE_NAMES
from calibdata.sources import Source
from srdeploy.data.categories import CATEGORIES, CATEGORY_FILE, category_file_text

GENERATOR = "tools/make_calib_data.py"
SPLITS = ("eval", "train")


@dataclass(frozen=True)
class Entry:
    """One manifest record."""

    set: str
    name: str
    category: str
    group: str
    sha256: str
    width: int
    height: int
    channels: int  # 3 (RGB) or 1 (gray: the source has no colour)
    source_package: str
    source_path: str
    license: str
    copyright: str
    processing: str
    synthetic: str | None  # how a synthetic image was made; None for real images


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_entry(spec: Spec, source: Source, out: Path) -> Entry:
    src_path = source.root / source.prefix / spec.path
    if not src_path.is_file():
        raise FileNotFoundError(f"{spec.path} not found in {source.package}")
    if spec.category not in CATEGORIES:
        raise ValueError(f"{spec.name}: unknown category {spec.category!r}")
    license_id, holder = source.licence(spec.path)
    if license_id not in LICENSE_NAMES:
        raise ValueError(f"{spec.path}: licence {license_id!r} is not on the accepted list")
    steps: list[str] = []
    im = imaging.prepare(src_path, spec.split, (spec.border, spec.native, spec.long_side), steps)
    how = None
    if spec.synthetic == "low_light":
        im, how = synth.low_light(im, spec.name)
        steps.append(how)
    elif spec.synthetic:
        raise ValueError(f"{spec.name}: unknown synthesis recipe {spec.synthetic!r}")
    data = imaging.png_bytes(im)
    (out / spec.split / f"{spec.name}.png").write_bytes(data)
    return Entry(
        set=spec.split,
        name=f"{spec.name}.png",
        category=spec.category,
        group=spec.family,
        sha256=sha256_of(data),
        width=im.width,
        height=im.height,
        channels=1 if im.mode == "L" else 3,
        source_package=source.package,
        source_path=source.package_path(spec.path),
        license=license_id,
        copyright=holder,
        processing=", ".join(steps),
        synthetic=how,
    )


def prepare_out(out: Path) -> None:
    """Create the split folders and remove PNGs left from a previous run."""
    for split in SPLITS:
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()


def write_manifest(out: Path, entries: list[Entry]) -> None:
    files = [asdict(e) for e in sorted(entries, key=lambda e: (e.set, e.name))]
    doc = {"generator": GENERATOR, "categories": CATEGORIES, "files": files}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")


def write_categories(out: Path, entries: list[Entry]) -> None:
    for split in SPLITS:
        tags = {Path(e.name).stem: e.category for e in entries if e.set == split}
        (out / split / CATEGORY_FILE).write_text(category_file_text(tags), encoding="utf-8")


def total_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def check(out: Path) -> int:
    """Verify the files on disk against manifest.json; return non-zero naming mismatches."""
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        print(f"error: {manifest_path} not found", file=sys.stderr)
        return 2
    files = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    bad = 0
    for rec in files:
        rel = f"{rec['set']}/{rec['name']}"
        path = out / rel
        if not path.is_file():
            print(f"MISSING  {rel}", file=sys.stderr)
            bad += 1
        elif sha256_of(path.read_bytes()) != rec["sha256"]:
            print(f"MISMATCH {rel}: sha256 differs from manifest", file=sys.stderr)
            bad += 1
    for split in SPLITS:
        expected = category_file_text({Path(r["name"]).stem: r["category"] for r in files if r["set"] == split})
        cat_path = out / split / CATEGORY_FILE
        if not cat_path.is_file() or cat_path.read_text(encoding="utf-8") != expected:
            print(f"MISMATCH {split}/{CATEGORY_FILE}: differs from the manifest's categories", file=sys.stderr)
            bad += 1
    listed = {f"{rec['set']}/{rec['name']}" for rec in files}
    for split in SPLITS:
        for path in sorted((out / split).glob("*.png")):
            if f"{split}/{path.name}" not in listed:
                print(f"warning: {split}/{path.name} is not in the manifest", file=sys.stderr)
    if bad:
        print(f"{bad} of {len(files) + len(SPLITS)} files do not match {manifest_path}", file=sys.stderr)
        return 1
    print(f"ok: {len(files)} images and {len(SPLITS)} category files match {manifest_path}")
    return 0
