"""Licences accepted into calib_data/ and where each source states them.

Debian packages state licences in DEP-5 ``debian/copyright`` files; KDE wallpapers also carry a
per-wallpaper ``metadata.json`` (author and licence), which is more specific than the package-wide
paragraph and is the one recorded. PyPI packages ship no machine-readable licence for their sample
images, so those statements are copied from the packages' own documentation (see the tables).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

# Normalised SPDX-like ids -> full names. A source whose licence is not here is refused.
LICENSE_NAMES = {
    "Apache-2.0 AND BSD-3-Clause": 'Apache License 2.0 and BSD 3-Clause "New" or "Revised" License',
    "BSD-3-Clause": 'BSD 3-Clause "New" or "Revised" License',
    "GPL-2.0-or-later": "GNU General Public License v2.0 or later",
    "LGPL-3.0-only": "GNU Lesser General Public License v3.0",
    "CC0-1.0": "Creative Commons Zero v1.0 Universal (public-domain dedication)",
    "CC-BY-4.0": "Creative Commons Attribution 4.0 International",
    "CC-BY-SA-3.0": "Creative Commons Attribution-ShareAlike 3.0 Unported",
    "CC-BY-SA-4.0": "Creative Commons Attribution-ShareAlike 4.0 International",
    "public-domain": "Public domain (no known copyright restrictions)",
}
LICENSE_ALIASES = {
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-2.0+": "GPL-2.0-or-later",
    "BSD-3-clause": "BSD-3-Clause",
    # KDE's metadata says "LGPLv3" without "or later": recorded as the narrower licence.
    "LGPLv3": "LGPL-3.0-only",
}

# scikit-image: statements from the docstrings of the skimage.data functions (skimage/data/_fetchers.py).
SKIMAGE_LICENSES = {
    "astronaut.png": ("public-domain", "NASA (Great Images database); no known copyright restrictions"),
    "brick.png": ("CC0-1.0", "CC0Textures (Bricks25), CC0; perspective-corrected by scikit-image"),
    "camera.png": ("CC0-1.0", "Lav Varshney (photographer), CC0"),
    "chelsea.png": ("CC0-1.0", "Stefan van der Walt (photographer), CC0"),
    "coffee.png": ("CC0-1.0", "Rachel Michetti (photographer), courtesy of Pikolo Espresso Bar, CC0"),
    "coins.png": ("public-domain", "Brooklyn Museum Collection; no known copyright restrictions"),
    "grass.png": ("CC0-1.0", "linolafett (DeviantArt, Grass-01), CC0"),
    "gravel.png": ("CC0-1.0", "CC0Textures (Gravel04), CC0"),
    "rocket.jpg": ("public-domain", "SpaceX, released into the public domain"),
    "text.png": ("public-domain", "Wikipedia File:Corner.png; no known copyright restrictions"),
}
# matplotlib's sample data: the JPEG comment of grace_hopper.jpg names its source on Wikimedia
# Commons, where it is a U.S. Navy photograph (a work of the U.S. federal government).
MATPLOTLIB_LICENSES = {
    "grace_hopper.jpg": ("public-domain", "U.S. Navy photograph (Wikimedia Commons File:Grace_Hopper.jpg)"),
}


def normalise(license_id: str) -> str:
    return LICENSE_ALIASES.get(license_id.strip(), license_id.strip())


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
    license_id = normalise(match["License"].splitlines()[0])
    holders = [h.strip().rstrip("\u00b4.").strip() for h in match["Copyright"].splitlines() if h.strip()]
    holders = [h.removeprefix("Copyright (C) ").removeprefix("Copyright ") for h in holders]
    return license_id, "; ".join(holders)


def kde_metadata_licence(wallpaper_dir: Path) -> tuple[str, str]:
    """(license, author) from a KDE wallpaper's metadata.json, or its older metadata.desktop."""
    meta = wallpaper_dir / "metadata.json"
    if meta.is_file():
        plugin = json.loads(meta.read_text(encoding="utf-8"))["KPlugin"]
        authors = [_author(a.get("Name", ""), a.get("Email", "")) for a in plugin.get("Authors", [])]
        return normalise(plugin["License"]), "; ".join(authors)
    fields: dict[str, str] = {}
    for line in (wallpaper_dir / "metadata.desktop").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        fields[key.strip()] = value.strip()
    author = _author(fields["X-KDE-PluginInfo-Author"], fields.get("X-KDE-PluginInfo-Email", ""))
    return normalise(fields["X-KDE-PluginInfo-License"]), author


def _author(name: str, email: str | None) -> str:
    email = (email or "").strip()
    if email.startswith(name) and "<" in email:  # e.g. "Ken Vermette <vermette@gmail.com>"
        return email
    return f"{name} <{email}>" if email else name
