"""``python3 -m bench --help`` lists every benchmark with one line on what it measures."""

import re
import subprocess
import sys
from pathlib import Path

from bench.__main__ import discover

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_benchmark_and_what_it_measures():
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = dict(re.findall(r"^  ([a-z_]+)\s{2,}(\S.*)$", proc.stdout.split("benchmarks:\n", 1)[1],
                             flags=re.M))
    assert set(listed) == set(discover()) >= {"mul", "matmul", "cmp", "gc", "secagg"}
    assert all(len(line) > 30 for line in listed.values())
    assert len(set(listed.values())) == len(listed)        # one description each
