from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from srdeploy.data.io import read_image
from srdeploy.data.sets import resolve_images

REPO = Path(__file__).resolve().parents[2]


def test_manifest_checksums_match_the_files() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_calib_data.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    manifest = json.loads((REPO / "calib_data" / "manifest.json").read_text())
    files = manifest["files"]
    assert {f["set"] for f in files} == {"train", "eval"}
    for f in files:
        data = (REPO / "calib_data" / f["set"] / f["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert f["license"]


def test_train_and_eval_do_not_overlap_by_content() -> None:
    def digests(name: str) -> set[str]:
        return {hashlib.sha256(read_image(p).tobytes()).hexdigest() for p in resolve_images(name)}

    assert not digests("train") & digests("eval")


def test_eval_set_is_varied_colour_photographs_divisible_by_12() -> None:
    images = resolve_images("eval")
    assert len(images) >= 10
    for p in images:
        img = read_image(p)
        assert img.shape[0] % 12 == 0 and img.shape[1] % 12 == 0
        assert np.std(img[..., 0] - img[..., 1]) > 0.01  # not grayscale
