"""examples/transfer_learning.py end to end (small insecure keys, to stay fast)."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transfer_learning.py"


def _value(out: str, label: str) -> float:
    found = re.findall(rf"^{re.escape(label)}: ([0-9.e+-]+)\s*$", out, flags=re.M)
    assert len(found) == 1, out[-2000:]
    return float(found[0])


def test_transfer_learning_example_guest_gains_and_matches_plaintext(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--key-bits", "512", "--insecure-keys", "--steps", "10"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    alone, with_ftl = _value(out, "guest alone accuracy"), _value(out, "with FTL accuracy")
    assert with_ftl > alone + 0.02
    diff = re.search(r"largest weight difference to the same FTL in plaintext: ([0-9.e+-]+)", out)
    assert diff is not None and float(diff.group(1)) < 1e-4
