#!/usr/bin/env python3
"""Build ``calib_data/``: small, freely licensed images for SR training, calibration and evaluation.

The eval and train sets cover what breaks static quantization ranges (monochrome and flat images,
sky and bokeh, text, screenshots, line art, low light, faces, dense texture) besides ordinary
photographs; every image is tagged with one category (srdeploy.data.categories). Everything comes
from offline-installable, licence-audited packages: Debian packages fetched with ``apt-get
download`` and unpacked with ``dpkg -x`` (licences from their DEP-5 ``debian/copyright``), and the
installed scikit-image and matplotlib sample data. The catalogue is tools/calibdata/catalogue.py.

Every output image is an 8-bit RGB (or gray) PNG whose width and height are divisible by 12. The
output is deterministic: running the script twice gives byte-identical files.

Usage::

    python tools/make_calib_data.py                 # (re)build calib_data/
    python tools/make_calib_data.py --check         # verify sha256 of calib_data/ against its manifest
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibdata.build import build
from calibdata.output import check


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
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
