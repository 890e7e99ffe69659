"""The wheel ships everything the app needs at run time: code, migrations, templates, static files, compiled
translation catalogues, contract artifacts and ``py.typed`` — and nothing of the example shop or the tests."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# One probe per data folder, nested like the real files, so the package-data globs are tested even before a
# branch adds its first template, static file or contract.
PROBES = [
    "templates/payments_gateway/checkout/zz_probe.html",
    "static/payments_gateway/js/zz_probe.js",
    "locale/zz/LC_MESSAGES/zz_probe.mo",
    "chain/contracts/zz_probe.sol",
    "chain/contracts/build/zz_probe.json",
]


def test_wheel_contains_every_package_file(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "payments_gateway", source / "payments_gateway", ignore=shutil.ignore_patterns("__pycache__")
    )
    for probe in PROBES:
        (source / "payments_gateway" / probe).parent.mkdir(parents=True, exist_ok=True)
        (source / "payments_gateway" / probe).write_text("probe\n")

    # Offline and quick: the venv's setuptools (a dev dependency) builds it, as `pip wheel . --no-deps` does.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = (tmp_path / "dist").glob("payments_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {
        path.relative_to(source).as_posix() for path in (source / "payments_gateway").rglob("*") if path.is_file()
    }
    assert expected - names == set()
    assert {f"payments_gateway/{probe}" for probe in PROBES} <= names
    assert {"payments_gateway/py.typed", "payments_gateway/migrations/0001_initial.py"} <= names
    assert {f"payments_gateway/locale/{code}/LC_MESSAGES/django.mo" for code in ("de", "es", "fr")} <= names
    assert not any(name.startswith(("example_shop/", "tests/", "bench/")) for name in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Python: >=3.11" in metadata
    assert "Requires-Dist: Django<6,>=5.2" in metadata or "Requires-Dist: Django>=5.2,<6" in metadata
