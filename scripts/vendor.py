#!/usr/bin/env python
"""Fetch the web app's third-party browser libraries into ``server/web/static/vendor/``.

The app has no Node build step: each library is one file, its version in the file name,
its licence beside it. This script is how those files got there and how they are
updated. It asks ``npm pack`` for each package (so it uses whatever registry npm is
configured for), checks the tarball against the pinned ``sha512`` integrity before
reading anything from it, and copies the listed files out.

To update a library: change its version, run ``npm pack NAME@VERSION --json`` to read
the new integrity, pin it below, run this script, point the ES module imports at the new
file name and delete the old files.

    python scripts/vendor.py          # fetch and write the files
    python scripts/vendor.py --check  # only check that every listed file is present
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "src/ocula/server/web/static/vendor"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # npm's "sha512-<base64>" of the tarball
    # path inside the tarball -> file name in VENDOR ({v} is the version)
    files: dict[str, str] = field(default_factory=dict)

    def targets(self) -> dict[str, str]:
        return {src: dst.format(v=self.version) for src, dst in self.files.items()}


PACKAGES = [
    # Apache ECharts: the charts of the insights tab and the run page. Its ESM bundle
    # includes zrender and tslib, whose licences ship beside it.
    Package("echarts", "6.1.0",
            "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA==",
            {"package/dist/echarts.esm.min.js": "echarts-{v}.esm.min.js",
             "package/LICENSE": "echarts-{v}.LICENSE",
             "package/NOTICE": "echarts-{v}.NOTICE",
             "package/licenses/LICENSE-d3": "echarts-{v}.LICENSE-d3"}),
    Package("zrender", "6.1.0",
            "sha512-oEGMDB6pOP2S6OwRR4PdVv610zrjnA3Bh+JnSG12fYJlBKjtNAoEb5fSUoCOOINlH96I2fU38/A2UpRKs67xYQ==",
            {"package/LICENSE": "zrender-{v}.LICENSE"}),
    Package("tslib", "2.3.0",
            "sha512-N82ooyxVNm6h1riLCoyS9e3fuJ3AMG2zIZs2Gd1ATcSFjSA23Q0fzjjZeh0jbJvWVDZ0cJT8yaNNaaXHzueNjg==",
            {"package/LICENSE.txt": "tslib-{v}.LICENSE"}),
]


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(pkg: Package, workdir: Path) -> None:
    """Pack ``pkg`` with npm, check its integrity and copy its files into VENDOR."""
    out = subprocess.run(["npm", "pack", f"{pkg.name}@{pkg.version}", "--json",
                          "--pack-destination", str(workdir)],
                         check=True, capture_output=True, text=True).stdout
    tarball = workdir / json.loads(out)[0]["filename"]
    data = tarball.read_bytes()
    if _integrity(data) != pkg.integrity:
        raise SystemExit(f"{pkg.name}@{pkg.version}: tarball does not match the pinned "
                         "integrity; refusing to use it")
    with tarfile.open(tarball) as tar:
        for src, dst in pkg.targets().items():
            member = tar.extractfile(src)
            if member is None:
                raise SystemExit(f"{pkg.name}@{pkg.version}: {src} is not a file")
            (VENDOR / dst).write_bytes(member.read())
            print(f"  {dst}")


def missing() -> list[str]:
    return [dst for pkg in PACKAGES for dst in pkg.targets().values()
            if not (VENDOR / dst).is_file()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that every vendored file is present")
    args = parser.parse_args()
    if args.check:
        gone = missing()
        for name in gone:
            print(f"missing: {name}")
        return 1 if gone else 0
    VENDOR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in PACKAGES:
            print(f"{pkg.name}@{pkg.version}")
            fetch(pkg, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
