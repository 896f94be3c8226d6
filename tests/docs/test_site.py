"""The documentation site builds: ``mkdocs build --strict`` with the tutorials and the API reference.

Strict mode turns every warning into a failure: a broken link between pages, a
page missing from the navigation, an API object that mkdocstrings cannot find,
a docstring it cannot parse. Skipped, with the reason, where the ``docs`` extra
is not installed (``.ci/run`` installs it, so CI builds the site).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS_EXTRA = ["mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter",
              "jupytext"]


def _missing() -> list[str]:
    out = []
    for name in DOCS_EXTRA:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:    # a parent package of a dotted name is missing
            found = False
        if not found:
            out.append(name)
    return out


def test_site_builds_strict(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        pytest.skip(f"needs the docs extra (pip install '.[docs]'): {', '.join(missing)} not installed")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)}
    env.pop("CONCILIUM_DOCS_EXECUTE", None)    # the tests execute the tutorials themselves
    # cwd: mkdocs-jupyter keeps its conversion cache in ./.cache, so not in the checkout
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    tutorials = sorted((ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
    for path in tutorials:
        page = (site / "tutorials" / path.stem / "index.html").read_text()
        assert "What you learned" in page, f"{path.name} is not rendered"
    for guide in sorted((ROOT / "docs").glob("*.md")):
        assert (site / ("" if guide.stem == "index" else guide.stem) / "index.html").exists(), guide.name
    # the API reference has the public names of each layer, from the docstrings
    api = {layer: (site / "api" / layer / "index.html").read_text() for layer in ("mpc", "protocols", "ml")}
    for layer, names in {"mpc": ["mpc.run", "mpc.SharedTensor", "mpc.share_all", "mpc.Party",
                                 "mpc.transcript.render"],
                         "protocols": ["protocols.millionaires.millionaires", "protocols.secagg.aggregate",
                                       "protocols.psi.psi"],
                         "ml": ["ml.federated.train", "ml.federated.DPConfig", "ml.vertical.fit_ss",
                                "ml.inference.secure.secure_predict"]}.items():
        for name in names:
            assert f'id="{name}"' in api[layer], f"{name} is missing from the API reference"
    assert (tmp_path / ".cache" / "mkdocs-jupyter").is_dir()    # the cache went to tmp_path
