"""The packages images are read from: Debian packages (apt-get download + dpkg -x) and PyPI packages.

Every source has a short key used in image names (``ocv_baboon``) and in the catalogue.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from calibdata.licences import (
    MATPLOTLIB_LICENSES,
    SKIMAGE_LICENSES,
    dep5_lookup,
    kde_metadata_licence,
    parse_dep5,
)

# key -> (Debian package, folder inside it that the catalogue's paths are relative to)
DEBIAN: dict[str, tuple[str, str]] = {
    "ocv": ("opencv-doc", "usr/share/doc/opencv-doc/examples"),
    "mate": ("mate-backgrounds", "usr/share/backgrounds/mate"),
    "kde": ("plasma-workspace-wallpapers", "usr/share/wallpapers"),
    "lomiri16": ("lomiri-wallpapers-16.04", "usr/share/backgrounds"),
    "lomiri20": ("lomiri-wallpapers-20.04", "usr/share/backgrounds"),
    "ukui": ("ukui-wallpapers", "usr/share/backgrounds"),
    "gnome": ("gnome-user-docs", "usr/share/help/C/gnome-help/figures"),
}
# key -> (PyPI distribution, importable package, folder inside the package)
PYPI: dict[str, tuple[str, str, str]] = {
    "ski": ("scikit-image", "skimage", "data"),
    "mpl": ("matplotlib", "matplotlib", "mpl-data/sample_data"),
}


@dataclass(frozen=True)
class Source:
    """An unpacked package the images are read from."""

    key: str
    package: str  # e.g. "debian:opencv-doc 4.6.0+dfsg-12"
    root: Path  # package paths are relative to this directory
    prefix: str  # catalogue paths are relative to root/prefix
    copyright: list[dict[str, str]]  # parsed DEP-5 paragraphs (empty for PyPI packages)

    def package_path(self, rel: str) -> str:
        """Path inside the package, as recorded in the manifest."""
        return f"{self.prefix}/{rel}"

    def licence(self, rel: str) -> tuple[str, str]:
        """(licence id, copyright holders) of the file ``rel``."""
        name = PurePosixPath(rel).name
        if self.key == "ski":
            return SKIMAGE_LICENSES[name]
        if self.key == "mpl":
            return MATPLOTLIB_LICENSES[name]
        if self.key == "kde":
            licence, author = kde_metadata_licence(self.root / self.prefix / rel.split("/")[0])
            _, package_holder = dep5_lookup(self.copyright, rel)
            return licence, f"{author} (wallpaper metadata); package copyright: {package_holder}"
        return dep5_lookup(self.copyright, upstream_path(self.key, rel))


def upstream_path(key: str, rel: str) -> str:
    """Map a catalogue path to the upstream path that debian/copyright's Files patterns use."""
    if key == "ocv":
        module, _, rest = rel.partition("/")
        if module in ("data", "cpp", "python"):
            return f"samples/{rel}"
        return f"contrib/modules/{module}/samples/{rest}"
    if key == "lomiri16":
        return f"16.04/{rel}"
    if key == "lomiri20":
        return f"20.04/{rel}"
    return rel


def run(cmd: Sequence[str], cwd: Path | None = None) -> str:
    """Run a command and return its stdout; raise with its stderr on failure."""
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def require_tools(tools: Iterable[str]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        packages = " ".join(p for p, _ in DEBIAN.values())
        raise SystemExit(
            f"error: {', '.join(missing)} not found. This script needs a Debian/Ubuntu system with apt "
            f"configured (it runs 'apt-get download {packages}' and 'dpkg -x')."
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
    debs[0].unlink()  # the unpacked tree is all that is needed; keeps the temporary folder small
    return root, version


def debian_sources(workdir: Path, keys: Iterable[str]) -> dict[str, Source]:
    require_tools(("apt-get", "dpkg", "dpkg-deb"))
    sources: dict[str, Source] = {}
    for key in keys:
        package, prefix = DEBIAN[key]
        root, version = fetch_debian(package, workdir)
        text = (root / f"usr/share/doc/{package}/copyright").read_text(encoding="utf-8")
        sources[key] = Source(key, f"debian:{package} {version}", root, prefix, parse_dep5(text))
    return sources


def pypi_sources(keys: Iterable[str]) -> dict[str, Source]:
    """Installed PyPI packages (imported only to locate their data folders)."""
    sources: dict[str, Source] = {}
    for key in keys:
        dist, module, folder = PYPI[key]
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{dist} is not installed: pip install {dist} (see pyproject.toml's dev extra)")
        root = Path(spec.origin).resolve().parent.parent
        version = importlib.metadata.version(dist)
        sources[key] = Source(key, f"pypi:{dist} {version}", root, f"{module}/{folder}", [])
    return sources
