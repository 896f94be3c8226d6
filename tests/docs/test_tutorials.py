"""The tutorials run: every docs/tutorials/*.py executes top to bottom and prints what it promises.

Each tutorial (a jupytext percent script) runs as a script in a fresh
subprocess, in a temporary directory, with matplotlib's non-interactive
backend; its key printed results are then checked against the plaintext
answers they state. One tutorial is also executed as a notebook (nbclient,
a real kernel), so the notebook form is exercised too.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "docs" / "tutorials"
FILES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
NEEDS = ["matplotlib", "sklearn"]   # the plot and sklearn extras (both in dev and docs)


def _env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    # one BLAS thread: on a shared 2-core machine (CI, pytest-xdist) BLAS worker threads
    # spinning against each other make the small numpy trainings ten times slower
    one = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**os.environ, **one, "PYTHONPATH": path, "MPLBACKEND": "Agg", "TMPDIR": str(tmp_path),
            "PYTHONWARNINGS": "ignore"}


def run_tutorial(name: str, tmp_path: Path) -> str:
    """Run ``docs/tutorials/<name>`` as a script; its stdout (stderr shown on failure)."""
    missing = [m for m in NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the tutorials need {', '.join(missing)} (extras plot, sklearn), not installed")
    proc = subprocess.run([sys.executable, str(TUTORIALS / name)], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"no line matching {pattern!r} in:\n{text}"
    return float(m.group(1))


def test_seven_tutorials_each_ending_with_what_was_learned() -> None:
    assert len(FILES) >= 7
    if importlib.util.find_spec("jupytext") is None:
        pytest.skip("needs jupytext (the docs extra: pip install '.[docs]'), not installed")
    import jupytext
    import nbformat

    for path in FILES:
        nb = jupytext.read(path)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), path.name
        assert "*Needs:*" in nb.cells[0].source, f"{path.name} does not say which extras it needs"
        last = nb.cells[-1]
        assert last.cell_type == "markdown" and "## What you learned" in last.source, path.name
        assert sum(c.cell_type == "code" for c in nb.cells) >= 4, path.name


def test_every_tutorial_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for path in FILES:
        assert f"tutorials/{path.name}" in nav, f"{path.name} is missing from mkdocs.yml's nav"
        assert f"({path.name})" in (TUTORIALS / "index.md").read_text(), path.name


def test_secret_sharing(tmp_path: Path) -> None:
    out = run_tutorial("01_secret_sharing.py", tmp_path)
    assert "reconstructed: [52, 61, 48]" in out
    assert "by hand: total = 161" in out
    assert abs(number(r"mean salary: ([\d.]+)", out) - (52.0 + 61.0 + 48.5) / 3) < 1e-3
    assert number(r"product of salaries 0 and 1: ([\d.]+)", out) == 52.0 * 61.0
    # party 1 received messages from the dealer and both other parties, no more
    senders = set(re.findall(r"^from (dealer|party \d)", out, re.M))
    assert senders == {"dealer", "party 0", "party 2"}
    assert number(r"transcript page: [\d,]+ characters, (\d+) messages", out) > 0


def test_millionaires(tmp_path: Path) -> None:
    out = run_tutorial("02_millionaires.py", tmp_path)
    assert "plaintext evaluation, a > b: True" in out
    assert "Alice is richer: True (both parties agree: True)" in out   # 7.3 M > 5.9 M
    assert "1982: Alice is at least as rich: True" in out
    entropies = [float(e) for e in re.findall(r"byte entropy ([\d.]+) bits/byte", out)]
    assert len(entropies) == 2 and min(entropies) > 7.8     # labels and tables look random
    per_width = ast.literal_eval(re.search(r"bytes per width: (\{.*\})", out)[1])
    assert list(per_width) == [8, 16, 32, 64]
    assert list(per_width.values()) == sorted(per_width.values())   # bytes grow with the width


def test_secure_aggregation(tmp_path: Path) -> None:
    out = run_tutorial("03_secure_aggregation.py", tmp_path)

    def vector(label: str) -> list[int]:
        line = next(x for x in out.splitlines() if x.startswith(label))
        return [int(v) for v in re.findall(r"\d+", line[len(label):])]

    assert vector("sum of what it received:") == vector("plaintext sum:")   # the masks cancel
    assert vector("sum of survivors, masks left in:") != vector("what it should be:")
    assert "survivors: [0, 1, 3, 4]" in out
    assert "within bound True" in out
    plus = re.search(r"secagg\+ neighbours per phone: \[([\d, ]+)\]", out)[1]
    full = re.search(r"secagg neighbours per phone: \[([\d, ]+)\]", out)[1]
    assert [int(k) for k in full.split(",")] == [9, 24, 49, 99]                  # n - 1
    assert all(int(k) < int(f) for k, f in zip(plus.split(",")[1:], full.split(",")[1:]))


def test_federated_learning(tmp_path: Path) -> None:
    out = run_tutorial("04_federated_learning.py", tmp_path)
    finals = {name: float(acc) for name, acc in
              re.findall(r"^(plaintext|secagg|ckks|paillier)\s+final accuracy ([\d.]+)", out, re.M)}
    assert set(finals) == {"plaintext", "secagg", "ckks", "paillier"}
    assert len(set(finals.values())) == 1                   # the secure sums train the same model
    assert 0.95 <= finals["plaintext"] <= 1.0               # 0.9823 on 113 test patients
    assert number(r"accounted ([\d.]+), accuracy", out) <= 2.0 + 1e-6
    assert 0.80 <= number(r"central DP, epsilon 8: accuracy ([\d.]+)", out) <= 1.0
    assert 0.90 <= number(r"no DP, 50 clients: accuracy ([\d.]+)", out) <= 1.0


def test_private_inference(tmp_path: Path) -> None:
    out = run_tutorial("05_private_inference.py", tmp_path)
    assert number(r"plaintext test accuracy: ([\d.]+)", out) >= 0.85
    assert number(r"secret sharing: labels .*max score error ([\d.e+-]+)", out) < 1e-2
    assert number(r"CKKS: labels .*max score error ([\d.e+-]+)", out) < 1e-2
    assert "both agree with the plaintext labels: True" in out


def test_vertical_learning(tmp_path: Path) -> None:
    out = run_tutorial("06_vertical_learning.py", tmp_path)
    assert "the clinic learns: ['ann', 'cy']" in out
    assert "the lab learns:    None" in out
    assert "with output='size': 2" in out
    assert "common patients: 420" in out                    # 480 + 509 - 569
    assert number(r"test accuracy ([\d.]+)", out) >= 0.9
    assert number(r"max \|secure - plaintext\| probability: ([\d.e+-]+)", out) < 2e-3


def test_your_own_protocol(tmp_path: Path) -> None:
    out = run_tutorial("07_your_own_protocol.py", tmp_path)
    assert "ring sum:      [ 6 12 18]" in out and "plaintext sum: [ 6 12 18]" in out
    assert "every party got the same total: True" in out
    for n in (3, 5, 8):
        assert f"n = {n}: {n + 1} rounds (formula n + 1 = {n + 1}), {2 * n - 1} messages" in out
    assert "expected 'ring-sum/step' from party 1 but received 'ring-sum/hop'" in out
    assert "transcript written: ['ring_sum.html', 'ring_sum.json']" in out
    assert '"name": "ring-sum"' in out


def test_a_tutorial_runs_as_a_notebook(tmp_path: Path) -> None:
    """The notebook form: tutorial 1 through jupytext and a real kernel (nbclient)."""
    for module in ("jupytext", "nbclient", "ipykernel", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module} (the docs extra: pip install '.[docs]'), not installed")
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(TUTORIALS / "01_secret_sharing.py")
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    env = _env(tmp_path)
    env.pop("MPLBACKEND")                  # the kernel's inline backend, as in Jupyter
    client.execute(env=env)                # the kernel's environment: this checkout on its path
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "product of salaries 0 and 1: 3172.0" in text
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any("<iframe srcdoc=" in o["data"]["text/html"] for o in html)   # the transcript, inline
    assert any("image/png" in o.get("data", {}) for o in outputs)           # the histogram


@pytest.mark.parametrize("script", FILES, ids=lambda p: p.stem)
def test_notebook_is_the_script_paired_and_without_outputs(script):
    """Each tutorial is also a .ipynb (jupytext pair): the same cells as the script, no outputs stored."""
    jupytext = pytest.importorskip("jupytext", reason="the 'docs' extra is not installed")
    notebook = script.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} is missing: jupytext --sync {script.name}"
    ours, paired = jupytext.read(script), jupytext.read(notebook)
    assert [(c.cell_type, c.source) for c in ours.cells] == [(c.cell_type, c.source) for c in paired.cells], \
        f"{notebook.name} differs from {script.name}: jupytext --sync {script.name}"
    assert all(not c.get("outputs") for c in paired.cells if c.cell_type == "code")
