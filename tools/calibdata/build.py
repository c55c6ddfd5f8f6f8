"""Build calib_data/ from the catalogue: fetch the packages, write images, manifest, categories, README."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

from calibdata import output, readme
from calibdata.catalogue import SPECS, Spec
from calibdata.sources import DEBIAN, debian_sources, pypi_sources

# Bytes per split: the eval set may grow by ~15 MB and train by ~8 MB over the original sets
# (2.1 MB and 11.5 MB), keeping the repository's growth under ~20 MB.
MAX_SPLIT_BYTES = {"eval": 17_000_000, "train": 19_500_000}
MIN_TRAIN_SIDE = 192  # a 48 px LR calibration patch at x4 needs this much HR


def check_catalogue(specs: tuple[Spec, ...]) -> None:
    """Refuse a catalogue whose near-duplicate groups span both splits or whose names repeat."""
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"image names used twice: {', '.join(repeated)}")
    splits: dict[str, set[str]] = defaultdict(set)
    sources: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in specs:
        splits[s.family].add(s.split)
        sources[(s.source, s.path)].add(s.split)
    leaks = sorted(g for g, v in splits.items() if len(v) > 1)
    leaks += sorted(f"{k[0]}:{k[1]}" for k, v in sources.items() if len(v) > 1)
    if leaks:
        raise ValueError(f"near-duplicates in both train and eval: {', '.join(leaks)}")


def check_sizes(out: Path, entries: list[output.Entry]) -> list[str]:
    errors = []
    for split, limit in MAX_SPLIT_BYTES.items():
        size = sum((out / split / e.name).stat().st_size for e in entries if e.set == split)
        if size > limit:
            errors.append(f"{split}/ is {size / 1e6:.1f} MB, over its {limit / 1e6:.1f} MB budget")
    small = [e.name for e in entries if e.set == "train" and min(e.width, e.height) < MIN_TRAIN_SIDE]
    if small:
        errors.append(f"train images below {MIN_TRAIN_SIDE} px give no calibration patch: {', '.join(small)}")
    return errors


def build(out: Path) -> int:
    check_catalogue(SPECS)
    used = {s.source for s in SPECS}
    with tempfile.TemporaryDirectory(prefix="calib_debs_") as tmp:
        sources = debian_sources(Path(tmp), [k for k in DEBIAN if k in used])
        sources.update(pypi_sources(sorted(used - set(DEBIAN))))
        output.prepare_out(out)
        entries = []
        for spec in SPECS:
            entry = output.build_entry(spec, sources[spec.source], out)
            print(f"{entry.set:5s} {entry.category:10s} {entry.name:38s} {entry.width:4d}x{entry.height:<4d}")
            entries.append(entry)
    output.write_manifest(out, entries)
    output.write_categories(out, entries)
    readme.write_readme(out, entries)
    print(f"wrote {len(entries)} images to {out} ({output.total_bytes(out) / 1e6:.1f} MB)")
    errors = check_sizes(out, entries)
    for e in errors:
        print(f"error: {e}")
    return 1 if errors else 0
