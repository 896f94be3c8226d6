"""The demos run as a user runs them (a fresh process, in an empty directory) and print their results."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _proc(tmp_path: Path, script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _run(tmp_path: Path, script: str, *args: str, timeout: float = 300) -> str:
    return _proc(tmp_path, script, *args, timeout=timeout).stdout


def _final_bar_lines(stderr: str) -> list[str]:
    """Each progress bar's last state, in order (tqdm rewrites its line with carriage returns)."""
    last: dict[str, str] = {}
    for line in stderr.replace("\r", "\n").split("\n"):
        if "%|" in line:
            last[line.split(":")[0]] = line
    return list(last.values())


def _value(out: str, label: str) -> float:
    found = re.findall(rf"^{re.escape(label)}: ([0-9.]+)(%?)\s*$", out, flags=re.M)
    assert len(found) == 1, f"expected one line '{label}: X' in:\n{out[-2000:]}"
    number, percent = found[0]
    return float(number) / (100 if percent else 1)


def test_readme_main_demo_federated_hospitals(tmp_path):
    proc = _proc(tmp_path, "federated_hospitals.py")
    out = proc.stdout
    secure, plain = _value(out, "final accuracy"), _value(out, "plaintext accuracy")
    assert secure > 0.9 and abs(secure - plain) <= 0.01
    assert list(tmp_path.iterdir()) == []               # no --plot: nothing written
    # the progress bar leaves its final line on stderr
    assert any(line.startswith("secagg: 100%") for line in _final_bar_lines(proc.stderr))
    # the table says how many hospitals dropped out of each round
    rows = re.findall(r"^ +\d+ +(\d)/(\d) .*?(?:\((\d) hospitals? dropped out\))?$", out, flags=re.M)
    assert len(rows) == 15 and any(int(s) < int(m) for s, m, _ in rows)
    for survivors, sampled, gone in rows:
        assert int(gone or 0) == int(sampled) - int(survivors)
    assert "(1 hospitals" not in out and "a hospital dropped out" not in out


def test_federated_hospitals_plot_and_no_progress(tmp_path):
    proc = _proc(tmp_path, "federated_hospitals.py", "--no-progress", "--plot", "run.png",
                 "--aggregator", "plaintext")
    assert (tmp_path / "run.png").stat().st_size > 10_000
    assert _final_bar_lines(proc.stderr) == []


def test_vertical_credit_matches_centralized(tmp_path):
    out = _run(tmp_path, "vertical_credit.py", "--transcript", "vertical.html")
    vertical, central = _value(out, "vertical accuracy"), _value(out, "centralized accuracy")
    assert vertical > 0.9 and abs(vertical - central) <= 0.01
    assert re.search(r"in common after PSI", out)
    page = (tmp_path / "vertical.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "vertical/train-ss" in page


def test_federated_analytics_small(tmp_path):
    proc = _proc(tmp_path, "federated_analytics.py", "--devices", "100", "--plot", "hist.png")
    out = proc.stdout
    assert _value(out, "epsilon") == pytest.approx(1.0)
    assert _value(out, "histogram l1 error") >= 0
    assert (tmp_path / "hist.png").stat().st_size > 10_000
    # one finished progress bar per question on stderr (10 of 100 phones drop: 380 steps)
    bars = _final_bar_lines(proc.stderr)
    assert [b.split(":")[0] for b in bars] == ["secure sum, question 1", "secure sum, question 2"]
    assert all("100%" in b and "380/380" in b for b in bars)


def test_federated_analytics_writes_nothing_unless_asked(tmp_path):
    proc = _proc(tmp_path, "federated_analytics.py", "--devices", "60", "--no-progress")
    assert list(tmp_path.iterdir()) == [] and proc.stderr == ""


def test_private_inference_agrees_with_plaintext(tmp_path):
    out = _run(tmp_path, "private_inference.py")
    assert "[ckks] agreement: 100.0%" in out
    accuracy = re.search(r"^accuracy: ([0-9.]+)% \(plaintext square-activation model: ([0-9.]+)%\)",
                         out, flags=re.M)
    assert accuracy and float(accuracy.group(1)) == float(accuracy.group(2)) > 90


def test_federated_hospitals_as_processes(tmp_path):
    out = _run(tmp_path, "federated_hospitals.py", "--processes", "--workdir", str(tmp_path / "run"))
    secure, plain = _value(out, "final accuracy"), _value(out, "plaintext accuracy")
    assert secure > 0.9 and abs(secure - plain) <= 0.01
    assert out.count("mpc fl client --config fl.toml") == 5
    rows = re.findall(r"^ +\d+ +(\d)/(\d) ", out, flags=re.M)
    assert len(rows) == 15 and all(s == m == "5" for s, m in rows)
    assert (tmp_path / "run" / "keys" / "party5.crt").exists()


def test_private_training_matches_plaintext(tmp_path):
    out = _run(tmp_path, "private_training.py", "--epochs", "1")
    private, plain = _value(out, "private accuracy"), _value(out, "plaintext accuracy")
    assert private > 0.9 and abs(private - plain) <= 0.01
