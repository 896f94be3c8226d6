"""The narrated SecAgg demo runs, recovers the survivors' sum and writes its transcript."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "secure_aggregation.py"


def test_demo_runs_and_writes_transcript(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("secure_aggregation", EXAMPLE)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    page = tmp_path / "secagg.html"
    assert demo.main(["--clients", "4", "--dim", "4", "--many", "30", "--transcript", str(page)]) == 0
    out = capsys.readouterr().out
    assert "refused" in out and "phone 2: nothing (offline)" in out
    # the refusal names the round the narration calls it (round 3, 'unmask')
    refusal = next(line for line in out.splitlines() if "ProtocolAbort" in line)
    assert "round 'unmask'" in refusal and "Round 3 'unmask'" in out
    assert page.exists() and "<html" in page.read_text()[:2000].lower()
