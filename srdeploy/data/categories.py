"""Content categories of image sets: the vocabulary and the per-folder ``categories.json`` file.

A set folder may hold ``categories.json``::

    {"format": "srdeploy-categories/1", "categories": {"<image stem>": "<category>", ...}}

Categories tell reports which kind of content an image is, so a deployment that fails on, say,
flat gradients or screenshots shows up as a category rather than hiding in the set's mean. Images
the file does not name (and every image of a folder without the file) are ``uncategorised``.
"""

from __future__ import annotations

import json
from pathlib import Path

from srdeploy.errors import DataError

CATEGORY_FILE = "categories.json"
FORMAT = "srdeploy-categories/1"
UNCATEGORISED = "uncategorised"

# One category per image: the property that matters most for static quantization ranges.
CATEGORIES: dict[str, str] = {
    "monochrome": "black-and-white / high-contrast monochrome photographs (architecture, scenes)",
    "flat": "flat gradients and near-flat images (fog, still water, smooth artwork)",
    "sky_bokeh": "large smooth regions of sky or defocused background (bokeh)",
    "text": "text: documents, printed pages, signs",
    "screenshot": "screenshots of user interfaces",
    "line_art": "line art, cartoons, anime and flat-shaded illustrations",
    "low_light": "dark, noisy low-light photographs",
    "face": "faces and portraits",
    "texture": "dense texture (fur, wood, gravel, foliage, brush strokes)",
    "photo": "ordinary photographs of mixed content",
}


def read_category_file(folder: Path) -> dict[str, str]:
    """``folder/categories.json`` -> stem -> category ({} when the file is absent)."""
    path = folder / CATEGORY_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}", "fix the JSON or delete the file") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"{path} is not a '{FORMAT}' file", f'write {{"format": "{FORMAT}", "categories": {{...}}}}')
    mapping = doc.get("categories")
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise DataError(f"{path}: 'categories' must map image stems to category names", "fix the file")
    unknown = sorted({v for v in mapping.values() if v not in CATEGORIES and v != UNCATEGORISED})
    if unknown:
        raise DataError(
            f"{path} uses unknown categories {', '.join(unknown)}",
            f"use one of: {', '.join(CATEGORIES)}",
        )
    return {str(k): v for k, v in mapping.items()}


def category_file_text(categories: dict[str, str]) -> str:
    """The canonical bytes of a categories.json (sorted, one image per line)."""
    doc = {"format": FORMAT, "categories": dict(sorted(categories.items()))}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
