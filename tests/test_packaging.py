"""What an installation contains: the data files the bot reads at run time must be installed,
not only present in the source tree. The build step that copies a package's files into a wheel
(setuptools' ``build_py``, driven by ``pyproject.toml``) runs on a copy of the sources, offline;
then the bot's own loaders read the data from that copy alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT

# Read through the same calls the bot uses, from the built copy only (asserted first).
CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import bot.nekos, bot.wording
from bot.nekos.catalog import load_snapshot
assert bot.nekos.__file__.startswith(sys.argv[1]), bot.nekos.__file__
assert len(load_snapshot()) > 50
assert bot.wording.message("error_internal")
"""


def test_installed_package_has_its_data(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("bot", "cogs"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    built = tmp_path / "built"
    build_py = ["-c", "import setuptools; setuptools.setup()", "-q", "build_py"]
    subprocess.run(
        [sys.executable, *build_py, "--build-lib", str(built)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert (built / "bot" / "nekos" / "snapshot.json").is_file()
    wording = sorted(p.name for p in (ROOT / "bot" / "wording").glob("*.toml"))
    assert wording and sorted(p.name for p in (built / "bot" / "wording").glob("*.toml")) == wording
    subprocess.run([sys.executable, "-c", CHECK, str(built)], cwd=tmp_path, check=True, timeout=60)
