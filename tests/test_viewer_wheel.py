"""The wheel carries the viewer: templates (top-level `templates/` → `runicorn/templates/`) and the
vendored static assets, so an installed Runicorn serves pages with no checkout and no network."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_templates_and_static_assets(tmp_path):
    src = tmp_path / "src"
    # Build from a copy of the files the build reads (the shared work tree stays untouched).
    shutil.copytree(ROOT / "runicorn", src / "runicorn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "templates", src / "templates")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("runicorn-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("base.html", "dashboard.html", "run.html", "artifact.html", "lineage_graph.html", "error.html"):
        assert f"runicorn/templates/viewer/{template}" in names
    for asset in ("viewer.css", "viewer.js", "favicon.svg", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css",
                  "vendor/uPlot.LICENSE", "vendor/swagger-ui/swagger-ui-bundle.js", "vendor/swagger-ui/swagger-ui.css",
                  "vendor/swagger-ui/LICENSE"):
        assert f"runicorn/viewer/static/{asset}" in names
    assert "runicorn/viewer/app.py" in names and "runicorn/cli_viewer.py" in names

    # Installed layout: the package finds its templates inside itself.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = subprocess.run([sys.executable, "-c", "import runicorn.viewer.render as r; print(r.template_dir())"],
                           cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(site), "PATH": ""})
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()) == site / "runicorn" / "templates" / "viewer"
