"""The demos run as a user runs them (a fresh process, in an empty directory) and print their results."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(tmp_path: Path, script: str, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _value(out: str, label: str) -> float:
    found = re.findall(rf"^{re.escape(label)}: ([0-9.]+)(%?)\s*$", out, flags=re.M)
    assert len(found) == 1, f"expected one line '{label}: X' in:\n{out[-2000:]}"
    number, percent = found[0]
    return float(number) / (100 if percent else 1)


def test_readme_main_demo_federated_hospitals(tmp_path):
    out = _run(tmp_path, "federated_hospitals.py", "--no-progress")
    secure, plain = _value(out, "final accuracy"), _value(out, "plaintext accuracy")
    assert secure > 0.9 and abs(secure - plain) <= 0.01
    assert (tmp_path / "federated_hospitals.png").stat().st_size > 10_000


def test_vertical_credit_matches_centralized(tmp_path):
    out = _run(tmp_path, "vertical_credit.py", "--transcript", "vertical.html")
    vertical, central = _value(out, "vertical accuracy"), _value(out, "centralized accuracy")
    assert vertical > 0.9 and abs(vertical - central) <= 0.01
    assert re.search(r"in common after PSI", out)
    page = (tmp_path / "vertical.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "vertical/train-ss" in page


def test_federated_analytics_small(tmp_path):
    out = _run(tmp_path, "federated_analytics.py", "--devices", "100", "--plot", "hist.png")
    assert _value(out, "epsilon") == pytest.approx(1.0)
    assert _value(out, "histogram l1 error") >= 0
    assert (tmp_path / "hist.png").stat().st_size > 10_000


def test_private_inference_agrees_with_plaintext(tmp_path):
    out = _run(tmp_path, "private_inference.py")
    assert "[ckks] agreement: 100.0%" in out
    accuracy = re.search(r"^accuracy: ([0-9.]+)% \(plaintext square-activation model: ([0-9.]+)%\)",
                         out, flags=re.M)
    assert accuracy and float(accuracy.group(1)) == float(accuracy.group(2)) > 90
