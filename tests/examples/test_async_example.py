"""The FedBuff demo runs as a user runs it: FedBuff reaches the target sooner in simulated time."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_async_training_demo(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "async_training.py"), "--clients", "10",
                           "--rounds", "3", "--target", "0.85"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reach = dict(re.findall(r"^(FedAvg|FedBuff)[^:\n]*: 85% accuracy after ([0-9.]+) simulated seconds",
                            proc.stdout, re.M))
    assert set(reach) == {"FedAvg", "FedBuff"}, proc.stdout
    assert float(reach["FedBuff"]) < float(reach["FedAvg"])       # deterministic simulated clock
    assert re.search(r"staleness \[[0-9, ]*[1-9][0-9, ]*\] \(public\)", proc.stdout), proc.stdout
