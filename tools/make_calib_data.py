#!/usr/bin/env python3
"""Build ``calib_data/``: small, freely licensed colour photographs for SR work.

The images are used to train the reference SR models, to calibrate quantised
models and to evaluate them.  Everything comes from offline-installable,
licence-audited packages:

* scikit-image's bundled sample photographs (``skimage/data``),
* the Debian package ``opencv-doc`` (OpenCV sample images),
* the Debian package ``mate-backgrounds`` (nature wallpapers, GPL-2+).

The Debian packages are fetched with ``apt-get download`` into a temporary
directory and unpacked with ``dpkg -x``; licence and copyright holders are read
from each package's ``debian/copyright`` (DEP-5) file.

Every output image is an 8-bit RGB PNG whose width and height are divisible by
12 (so x2, x3 and x4 LR versions tile exactly).  JPEG sources are downscaled by
at least a factor of 2 (Lanczos) so that block artefacts vanish; PNG sources stay
native unless they are larger than the set's size limit.  The output is
deterministic: running the script twice gives byte-identical files.

Usage::

    python tools/make_calib_data.py                 # (re)build calib_data/
    python tools/make_calib_data.py --check         # verify sha256 of calib_data/ against its manifest
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

GENERATOR = "tools/make_calib_data.py"
MULTIPLE = 12
MAX_TOTAL_BYTES = 25 * 1000 * 1000
SPLITS = ("eval", "train")

# Downscale targets per split: a PNG is only resized when its long side exceeds ``max_long``;
# a JPEG is always reduced by at least JPEG_MIN_FACTOR and never above ``target_long``.
TARGET_LONG = {"train": 960, "eval": 480}
MAX_LONG = {"train": 1008, "eval": 528}
JPEG_MIN_FACTOR = 2

DEBIAN_PACKAGES = ("opencv-doc", "mate-backgrounds")
OCV_DIR = "usr/share/doc/opencv-doc/examples"
MATE_DIR = "usr/share/backgrounds/mate"
COPYRIGHT_FILES = {
    "opencv-doc": "usr/share/doc/opencv-doc/copyright",
    "mate-backgrounds": "usr/share/doc/mate-backgrounds/copyright",
}

# Licences accepted into the data set (normalised SPDX-like ids).
FREE_LICENSES = {
    "Apache-2.0 AND BSD-3-Clause",
    "BSD-3-Clause",
    "GPL-2.0-or-later",
    "CC0-1.0",
    "public-domain",
}
LICENSE_ALIASES = {
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-2.0+": "GPL-2.0-or-later",
    "BSD-3-clause": "BSD-3-Clause",
}
LICENSE_NAMES = {
    "Apache-2.0 AND BSD-3-Clause": 'Apache License 2.0 and BSD 3-Clause "New" or "Revised" License',
    "BSD-3-Clause": 'BSD 3-Clause "New" or "Revised" License',
    "GPL-2.0-or-later": "GNU General Public License v2.0 or later",
    "CC0-1.0": "Creative Commons Zero v1.0 Universal (public-domain dedication)",
    "public-domain": "Public domain (no known copyright restrictions)",
}

# scikit-image ships no machine-readable licence for its sample data; these statements are
# copied from the docstrings of the corresponding skimage.data functions (skimage/data/_fetchers.py).
SKIMAGE_LICENSES = {
    "astronaut.png": ("public-domain", "NASA (Great Images database); no known copyright restrictions"),
    "chelsea.png": ("CC0-1.0", "Stefan van der Walt (photographer), CC0"),
    "coffee.png": ("CC0-1.0", "Rachel Michetti (photographer), courtesy of Pikolo Espresso Bar, CC0"),
    "rocket.jpg": ("public-domain", "SpaceX, released into the public domain"),
}


@dataclass(frozen=True)
class Spec:
    """One output image: where it comes from and which split it belongs to."""

    name: str
    split: str
    source: str  # "ocv", "mate" or "ski"
    path: str  # path inside the package
    border: int = 0  # pixels of frame to remove on every side before anything else
    note: str = ""


def _ocv(name: str, split: str, rel: str, border: int = 0) -> Spec:
    return Spec(f"ocv_{name}", split, "ocv", f"{OCV_DIR}/{rel}", border)


def _mate(name: str, split: str, file: str) -> Spec:
    return Spec(f"mate_{name}", split, "mate", f"{MATE_DIR}/nature/{file}")


def _ski(name: str, split: str, file: str) -> Spec:
    return Spec(f"ski_{name}", split, "ski", f"skimage/data/{file}")


# Near-duplicate pairs are kept in one split (aero1/aero3, aloeL/aloeR, graf1/graf3,
# rubberwhale1/2, both butterflies) or only one member is used (leuvenA; ela_original).
SPECS: tuple[Spec, ...] = (
    # eval: texture, edges/architecture, faces, smooth regions, fine detail
    _ocv("baboon", "eval", "data/baboon.jpg"),
    _ocv("building", "eval", "data/building.jpg"),
    _ocv("butterfly", "eval", "data/butterfly.jpg"),
    _ocv("butterfly_monarch", "eval", "dnn_superres/butterfly.png"),
    _ocv("home", "eval", "data/home.jpg"),
    _ocv("leuven_a", "eval", "data/leuvenA.jpg"),
    _ocv("messi5", "eval", "data/messi5.jpg"),
    _mate("storm", "eval", "Storm.jpg"),
    _mate("wood", "eval", "Wood.jpg"),
    _mate("yellow_flower", "eval", "YellowFlower.jpg"),
    _ski("astronaut", "eval", "astronaut.png"),
    _ski("chelsea", "eval", "chelsea.png"),
    # train
    _mate("aqua", "train", "Aqua.jpg"),
    _mate("blinds", "train", "Blinds.jpg"),
    _mate("dune", "train", "Dune.jpg"),
    _mate("fresh_flower", "train", "FreshFlower.jpg"),
    _mate("garden", "train", "Garden.jpg"),
    _mate("green_meadow", "train", "GreenMeadow.jpg"),
    _mate("ladybird", "train", "LadyBird.jpg"),
    _mate("rain_drops", "train", "RainDrops.jpg"),
    _mate("two_wings", "train", "TwoWings.jpg"),
    _ocv("aero1", "train", "data/aero1.jpg"),
    _ocv("aero3", "train", "data/aero3.jpg"),
    _ocv("aloe_l", "train", "data/aloeL.jpg"),
    _ocv("aloe_r", "train", "data/aloeR.jpg"),
    _ocv("apple", "train", "data/apple.jpg"),
    _ocv("board", "train", "data/board.jpg"),
    _ocv("chicky", "train", "data/chicky_512.png"),
    _ocv("ela_original", "train", "data/ela_original.jpg"),
    _ocv("fruits", "train", "data/fruits.jpg"),
    _ocv("graf1", "train", "data/graf1.png"),
    _ocv("graf3", "train", "data/graf3.png"),
    _ocv("orange", "train", "data/orange.jpg"),
    _ocv("rubberwhale1", "train", "data/rubberwhale1.png"),
    _ocv("rubberwhale2", "train", "data/rubberwhale2.png"),
    _ocv("smarties", "train", "data/smarties.png"),
    _ocv("squirrel", "train", "data/squirrel_cls.jpg"),
    _ocv("starry_night", "train", "data/starry_night.jpg", border=14),
    _ski("coffee", "train", "coffee.png"),
    _ski("rocket", "train", "rocket.jpg"),
)

# Reported in README.md: what was looked at and deliberately left out.
EXCLUDED = (
    ("skimage motorcycle_left/right.png", "Middlebury 2014 stereo images; no licence stated, so skipped"),
    ("skimage hubble_deep_field.jpg, retina.jpg, ihc.png", "astronomy, medical and microscopy images"),
    ("skimage other data", "grayscale, synthetic graphics or texture swatches"),
    ("ocv leuvenB.jpg", "near-duplicate of leuvenA (eval)"),
    ("ocv ela_modified.jpg", "tampered copy of ela_original (train)"),
    ("ocv left.jpg/right.jpg, stuff.jpg", "dark, noisy low-quality snapshots"),
    ("ocv licenseplate_motion.jpg, text_*.jpg", "deliberately blurred / text"),
    ("ocv Blender_Suzanne*, HappyFish, logos, ml.png", "synthetic renders, clip art, logos"),
    ("ocv pic*.png, cards, gradient, detect_blob, templ/tmpl", "synthetic graphics"),
    ("ocv chessboard, left01-14/right01-14, sudoku, notes", "calibration patterns, grayscale, text"),
    ("ocv imageTextN/imageTextR", "text"),
    ("ocv blox, pca_test1, ellipses, basketball*, box*, aloeGT, digits", "grayscale or binary content"),
    ("mate abstract/*, desktop/*", "artwork and graphics, not photographs"),
)


@dataclass(frozen=True)
class Source:
    """An unpacked package the images are read from."""

    key: str
    package: str  # e.g. "debian:opencv-doc 4.6.0+dfsg-12"
    root: Path  # package paths are relative to this directory
    copyright: list[dict[str, str]]  # parsed DEP-5 paragraphs (empty for scikit-image)


@dataclass(frozen=True)
class Entry:
    """One manifest record."""

    set: str
    name: str
    sha256: str
    width: int
    height: int
    source_package: str
    source_path: str
    license: str
    copyright: str
    processing: str


# --------------------------------------------------------------------------- package handling


def run(cmd: Sequence[str], cwd: Path | None = None) -> str:
    """Run a command and return its stdout; raise with its stderr on failure."""
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def require_tools(tools: Iterable[str]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(
            f"error: {', '.join(missing)} not found. This script needs a Debian/Ubuntu system with apt "
            "configured (it runs 'apt-get download opencv-doc mate-backgrounds' and 'dpkg -x')."
        )


def fetch_debian(package: str, workdir: Path) -> tuple[Path, str]:
    """Download and unpack a Debian package; return (root, version)."""
    run(["apt-get", "download", package], cwd=workdir)
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"expected one {package}_*.deb in {workdir}, found {[d.name for d in debs]}")
    version = run(["dpkg-deb", "--field", str(debs[0]), "Version"]).strip()
    root = workdir / package
    run(["dpkg", "-x", str(debs[0]), str(root)])
    return root, version


def parse_dep5(text: str) -> list[dict[str, str]]:
    """Parse a DEP-5 copyright file into paragraphs (field -> value, continuation lines kept)."""
    paragraphs: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            paragraphs.append(fields)
    return paragraphs


def dep5_lookup(paragraphs: list[dict[str, str]], upstream_path: str) -> tuple[str, str]:
    """Return (license, copyright) of the last Files paragraph matching ``upstream_path``."""
    match: dict[str, str] | None = None
    for para in paragraphs:
        patterns = para.get("Files", "").split()
        if any(fnmatch.fnmatchcase(upstream_path, p) for p in patterns):
            match = para
    if match is None:
        raise RuntimeError(f"no copyright paragraph matches {upstream_path}")
    license_id = match["License"].splitlines()[0].strip()
    license_id = LICENSE_ALIASES.get(license_id, license_id)
    holders = [h.strip().rstrip("\u00b4.").strip() for h in match["Copyright"].splitlines() if h.strip()]
    return license_id, "; ".join(holders)


def upstream_path(spec: Spec) -> str:
    """Map a path inside the binary package to the upstream path used by debian/copyright."""
    if spec.source == "mate":
        return spec.path.removeprefix(MATE_DIR + "/")
    if spec.source == "ocv":
        rel = spec.path.removeprefix(OCV_DIR + "/")
        if rel.startswith("dnn_superres/"):
            return "contrib/modules/dnn_superres/samples/" + rel.removeprefix("dnn_superres/")
        return "samples/" + rel
    return spec.path


def license_of(spec: Spec, source: Source) -> tuple[str, str]:
    if spec.source == "ski":
        return SKIMAGE_LICENSES[Path(spec.path).name]
    return dep5_lookup(source.copyright, upstream_path(spec))


def skimage_source() -> Source:
    """scikit-image's data folder (skimage is only used to locate it)."""
    import skimage  # only needed for its install location

    root = Path(skimage.__file__).resolve().parent.parent
    version = importlib.metadata.version("scikit-image")
    return Source("ski", f"pypi:scikit-image {version}", root, [])


def debian_sources(workdir: Path) -> dict[str, Source]:
    require_tools(("apt-get", "dpkg", "dpkg-deb"))
    keys = {"opencv-doc": "ocv", "mate-backgrounds": "mate"}
    sources: dict[str, Source] = {}
    for package in DEBIAN_PACKAGES:
        root, version = fetch_debian(package, workdir)
        text = (root / COPYRIGHT_FILES[package]).read_text(encoding="utf-8")
        sources[keys[package]] = Source(keys[package], f"debian:{package} {version}", root, parse_dep5(text))
    return sources


# --------------------------------------------------------------------------- image processing


def to_srgb(im: Image.Image, steps: list[str]) -> Image.Image:
    """Convert an embedded non-sRGB ICC profile (e.g. Adobe RGB) to sRGB; sRGB is kept as is."""
    icc = im.info.get("icc_profile")
    if not icc:
        return im
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    desc = ImageCms.getProfileDescription(profile).strip()
    if "srgb" in desc.lower():
        return im
    srgb = ImageCms.createProfile("sRGB")
    out = ImageCms.profileToProfile(
        im, profile, srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"
    )
    assert out is not None
    steps.append(f"ICC {desc} -> sRGB")
    return out


def load_rgb(path: Path, steps: list[str]) -> Image.Image:
    """Open a colour photograph as RGB (EXIF orientation applied, ICC to sRGB, alpha flattened)."""
    with Image.open(path) as src:
        src.load()
        im = ImageOps.exif_transpose(src)
        im.info = dict(src.info)
    if im.mode not in ("RGB", "RGBA"):
        raise ValueError(f"{path.name}: mode {im.mode} is not a colour photograph")
    im = to_srgb(im, steps)
    if im.mode == "RGBA":
        alpha = np.asarray(im.getchannel("A"))
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im.convert("RGB"), mask=im.getchannel("A"))
        steps.append(f"flatten RGBA onto white ({int((alpha < 255).sum())} px not opaque)")
        im = background
    arr = np.asarray(im, dtype=np.int16)
    if np.abs(arr[..., 0] - arr[..., 1]).max() == 0 and np.abs(arr[..., 2] - arr[..., 1]).max() == 0:
        raise ValueError(f"{path.name}: grayscale content")
    return im


def crop_border(im: Image.Image, border: int, steps: list[str]) -> Image.Image:
    if border <= 0:
        return im
    w, h = im.size
    steps.append(f"remove {border} px frame {w}x{h} -> {w - 2 * border}x{h - 2 * border}")
    return im.crop((border, border, w - border, h - border))


def scaled_size(size: tuple[int, int], split: str, is_jpeg: bool) -> tuple[int, int]:
    """Output size before the /12 crop, following the per-split size policy."""
    w, h = size
    long_side = max(w, h)
    if is_jpeg:
        scale = min(TARGET_LONG[split] / long_side, 1.0 / JPEG_MIN_FACTOR)
    elif long_side > MAX_LONG[split]:
        scale = TARGET_LONG[split] / long_side
    else:
        return size
    return max(1, round(w * scale)), max(1, round(h * scale))


def downscale(im: Image.Image, split: str, is_jpeg: bool, steps: list[str]) -> Image.Image:
    new_size = scaled_size(im.size, split, is_jpeg)
    if new_size == im.size:
        return im
    w, h = im.size
    steps.append(f"lanczos downscale {w}x{h} -> {new_size[0]}x{new_size[1]}")
    return im.resize(new_size, Image.Resampling.LANCZOS)


def crop_to_multiple(im: Image.Image, multiple: int, steps: list[str]) -> Image.Image:
    """Centre-crop so both sides are divisible by ``multiple``."""
    w, h = im.size
    cw, ch = w - w % multiple, h - h % multiple
    if (cw, ch) == (w, h):
        steps.append(f"size already divisible by {multiple}")
        return im
    left, top = (w - cw) // 2, (h - ch) // 2
    steps.append(f"centre crop to /{multiple} {w}x{h} -> {cw}x{ch}")
    return im.crop((left, top, left + cw, top + ch))


def process(path: Path, spec: Spec) -> tuple[Image.Image, str]:
    """Load and prepare one HR image; return it with a description of the processing."""
    steps: list[str] = []
    im = load_rgb(path, steps)
    im = crop_border(im, spec.border, steps)
    im = downscale(im, spec.split, path.suffix.lower() in (".jpg", ".jpeg"), steps)
    im = crop_to_multiple(im, MULTIPLE, steps)
    return im, ", ".join(steps)


def png_bytes(im: Image.Image) -> bytes:
    """Encode as a bare 8-bit RGB PNG: no ancillary chunks, deterministic bytes."""
    clean = Image.fromarray(np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8)), "RGB")
    buf = io.BytesIO()
    clean.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------- output


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_entry(spec: Spec, source: Source, out: Path) -> Entry:
    src_path = source.root / spec.path
    if not src_path.is_file():
        raise FileNotFoundError(f"{spec.path} not found in {source.package}")
    license_id, holder = license_of(spec, source)
    if license_id not in FREE_LICENSES:
        raise ValueError(f"{spec.path}: licence {license_id!r} is not on the accepted list")
    im, processing = process(src_path, spec)
    data = png_bytes(im)
    (out / spec.split / f"{spec.name}.png").write_bytes(data)
    return Entry(
        set=spec.split,
        name=f"{spec.name}.png",
        sha256=sha256_of(data),
        width=im.width,
        height=im.height,
        source_package=source.package,
        source_path=spec.path,
        license=license_id,
        copyright=holder,
        processing=processing,
    )


def prepare_out(out: Path) -> None:
    """Create the split folders and remove PNGs left from a previous run."""
    for split in SPLITS:
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()


def write_manifest(out: Path, entries: list[Entry]) -> None:
    files = [vars(e) for e in sorted(entries, key=lambda e: (e.set, e.name))]
    doc = {"generator": GENERATOR, "files": files}
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")


def readme_holder(entry: Entry) -> str:
    """Copyright cell of the README table (the long OpenCV holder list is given once above it)."""
    if entry.source_package.startswith("debian:opencv-doc"):
        return "OpenCV copyright holders (see Licences)"
    return entry.copyright.replace("|", "/")


def readme_text(entries: list[Entry], sizes: dict[str, int]) -> str:
    """README.md for the output folder; ``sizes`` maps "set/name" to the file size in bytes."""
    entries = sorted(entries, key=lambda e: (e.set, e.name))
    packages = sorted({e.source_package for e in entries})
    counts = {s: sum(e.set == s for e in entries) for s in SPLITS}
    lines = [
        "# calib_data: licensed colour photographs for SR training, calibration and evaluation",
        "",
        "Generated by `python tools/make_calib_data.py`; verify with",
        "`python tools/make_calib_data.py --check`. Do not edit by hand: `manifest.json` lists every file",
        "with its sha256, size, source package and path, licence, copyright holders and processing.",
        "",
        "## Sets",
        "",
        f"- `train/` ({counts['train']} images, long side up to ~960 px): HR images for training the",
        "  reference SR models and for post-training-quantisation calibration (random LR/HR patches).",
        "  The small OpenCV JPEG samples end up at 250-640 px because of the 2x JPEG downscale.",
        f"- `eval/` ({counts['eval']} images, long side ~250-520 px, Set5/Set14-like): held-out",
        "  evaluation set covering strong texture, architecture/edges, faces, smooth regions and",
        "  fine detail.",
        "",
        "Near-duplicate pairs (stereo/optical-flow/viewpoint pairs, the two OpenCV butterflies) are kept in",
        "the same split, or only one member is used, so no evaluation content leaks into training.",
        "",
        "## How the images were made",
        "",
        "- Sources: scikit-image's bundled sample data, and the Debian packages `opencv-doc` and",
        "  `mate-backgrounds` (fetched with `apt-get download`, unpacked with `dpkg -x`).",
        "- Converted to 8-bit RGB (non-sRGB ICC profiles converted to sRGB, alpha flattened onto white).",
        f"- JPEG sources are downscaled by at least {JPEG_MIN_FACTOR}x with Pillow's Lanczos filter so JPEG",
        "  block artefacts vanish; PNG sources stay at native resolution unless larger than the set's limit.",
        f"- Width and height are centre-cropped to multiples of {MULTIPLE} (LR sizes exact for x2, x3, x4).",
        "- Saved as PNG with `optimize=True` and no ancillary chunks, so the output is byte-for-byte",
        "  reproducible.",
        "",
        "## Licences",
        "",
        "| licence id | licence | source packages |",
        "|---|---|---|",
    ]
    for lic in sorted({e.license for e in entries}):
        pkgs = ", ".join(sorted({e.source_package for e in entries if e.license == lic}))
        lines.append(f"| `{lic}` | {LICENSE_NAMES[lic]} | {pkgs} |")
    ocv_holders = next((e.copyright for e in entries if e.source_package.startswith("debian:opencv-doc")), "")
    lines += [
        "",
        "- `opencv-doc`: the sample images fall under the `Files: *` paragraph of",
        "  `/usr/share/doc/opencv-doc/copyright` (`License: Apache-2.0 AND BSD-3-Clause`; upstream",
        "  relicensed OpenCV to Apache-2.0, parts remain BSD-3-Clause). Copyright holders listed there:",
        f"  {ocv_holders}.",
        "- `mate-backgrounds`: each nature photograph is `GPL-2+` with the per-file copyright holders",
        "  listed in `/usr/share/doc/mate-backgrounds/copyright`. **The GPL-2+ images here are modified",
        "  (downscaled, cropped) versions redistributed with attribution under the GNU General Public",
        "  License, version 2 or (at your option) any later version**; the full text is in",
        "  `/usr/share/common-licenses/GPL-2`",
        "  on Debian systems or at <https://www.gnu.org/licenses/old-licenses/gpl-2.0.html>. The original",
        "  full-resolution JPEGs (the preferred form for modification) are in the Debian source and binary",
        "  package `mate-backgrounds` and at <https://git.mate-desktop.org/mate-backgrounds/>.",
        "- scikit-image: licence statements from the docstrings of `skimage.data` (astronaut: NASA, public",
        "  domain; chelsea, coffee: CC0 by the photographers; rocket: SpaceX, public domain). The",
        "  motorcycle stereo pair is not used because no licence is stated for it.",
        "",
        f"Package versions: {', '.join(packages)}.",
        "",
        "## Files",
        "",
        "| set | name | size (px) | KiB | source | licence | copyright |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        pkg = e.source_package.split(" ")[0]
        lines.append(
            f"| {e.set} | `{e.name}` | {e.width}x{e.height} | {sizes[f'{e.set}/{e.name}'] / 1024:.0f} "
            f"| {pkg}: `{e.source_path}` | `{e.license}` | {readme_holder(e)} |"
        )
    lines += ["", "## Not used", ""]
    lines += [f"- {what}: {why}" for what, why in EXCLUDED]
    return "\n".join(lines) + "\n"


def write_readme(out: Path, entries: list[Entry]) -> None:
    sizes = {f"{e.set}/{e.name}": (out / e.set / e.name).stat().st_size for e in entries}
    (out / "README.md").write_text(readme_text(entries, sizes), encoding="utf-8")


def total_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def build(out: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="calib_debs_") as tmp:
        sources = debian_sources(Path(tmp))
        sources["ski"] = skimage_source()
        prepare_out(out)
        entries = []
        for spec in SPECS:
            entry = build_entry(spec, sources[spec.source], out)
            print(f"{entry.set:5s} {entry.name:32s} {entry.width:4d}x{entry.height:<4d} {entry.processing}")
            entries.append(entry)
    write_manifest(out, entries)
    write_readme(out, entries)
    size = total_bytes(out)
    print(f"wrote {len(entries)} images to {out} ({size / 1e6:.1f} MB)")
    if size > MAX_TOTAL_BYTES:
        limit = MAX_TOTAL_BYTES / 1e6
        print(f"error: {out} is {size / 1e6:.1f} MB, over the {limit:.0f} MB limit", file=sys.stderr)
        return 1
    return 0


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
    listed = {f"{rec['set']}/{rec['name']}" for rec in files}
    for split in SPLITS:
        for path in sorted((out / split).glob("*.png")):
            if f"{split}/{path.name}" not in listed:
                print(f"warning: {split}/{path.name} is not in the manifest", file=sys.stderr)
    if bad:
        print(f"{bad} of {len(files)} files do not match {manifest_path}", file=sys.stderr)
        return 1
    print(f"ok: {len(files)} files match {manifest_path}")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("calib_data"), help="output folder (default: calib_data)")
    parser.add_argument("--check", action="store_true", help="only verify the files' sha256 against OUT/manifest.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check:
        return check(args.out)
    try:
        return build(args.out)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
