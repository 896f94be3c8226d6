"""The model-poisoning demo runs as a user runs it and shows FedAvg wrecked, the robust rules not."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_robust_aggregation_demo(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "robust_aggregation.py"), "--rounds", "4"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    acc = {label: float(v) / 100 for label, v in re.findall(r"^([^:\n]+): ([0-9.]+)%", proc.stdout, re.M)}
    assert acc["no attack, FedAvg"] > 0.9
    assert acc["FedAvg (plain mean)"] < 0.5
    for label in ("coordinate-wise median", "trimmed mean (20%)", "Krum", "multi-Krum",
                  "two-server norm check"):
        assert acc[label] > 0.85, (label, proc.stdout)
