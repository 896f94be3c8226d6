"""The documentation runs: every ```python block of README.md and docs/*.md is executed.

Each file's blocks run in order in one fresh namespace (a later block may use an
earlier one's names), in an empty temporary directory. A block that is
deliberately a fragment (party code out of its program, a sketch with ``...``)
is marked on the line before its fence with ``<!-- doctest: skip (why) -->``
and is skipped; a marker without a reason is an error. A block that needs an
optional extra is marked ``<!-- doctest: requires onnx, onnxruntime -->`` and
is skipped only where one of those modules is missing. Wording the docs and
demos promise is checked here too.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!--\s*doctest:\s*skip\s*\((?P<why>[^)]+)\)\s*-->")
REQUIRES = re.compile(r"<!--\s*doctest:\s*requires\s+(?P<modules>[\w.]+(?:\s*,\s*[\w.]+)*)\s*-->")


def _missing(modules: str) -> str | None:
    """Why a block needing ``modules`` is skipped here, or None when all import."""
    import importlib.util

    absent = [m.strip() for m in modules.split(",") if importlib.util.find_spec(m.strip()) is None]
    return f"needs {', '.join(absent)} (an optional extra), not installed" if absent else None


def blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` for each python block of ``path``."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        needs = REQUIRES.search(before)
        if "doctest" in before and not SKIP.search(before) and not needs:
            raise ValueError(f"{path.name}: malformed doctest marker {before!r}")
        skip = SKIP.search(before)
        why = skip["why"] if skip else (_missing(needs["modules"]) if needs else None)
        out.append((text[:m.start()].count("\n") + 2, m.group(1), why))
    return out


def run_blocks(path: Path) -> int:
    ns: dict = {"__name__": f"doc:{path.name}"}
    ran = 0
    for line, code, skip in blocks(path):
        if skip:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(code, f"{path.relative_to(ROOT)}:{line}", "exec"), ns)
        ran += 1
    return ran


@pytest.mark.slow
@pytest.mark.parametrize("path", [f for f in FILES if blocks(f)], ids=lambda p: p.name)
def test_code_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["doc"])
    run_blocks(path)


def test_most_blocks_run_and_every_skip_says_why():
    found = [(f.name, line, skip) for f in FILES for line, _, skip in blocks(f)]
    skipped = [b for b in found if b[2]]
    assert len(found) >= 25 and len(found) - len(skipped) >= 20, skipped
    assert all(len(why.strip()) > 10 for *_, why in skipped)


def test_a_block_that_fails_fails_the_test(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("text\n\n```python\nx = 1\n```\n\n<!-- doctest: skip (a sketch) -->\n"
                   "```python\nundefined_name\n```\n\n```python\ny = x + undefined_name\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [b[2] for b in blocks(doc)] == [None, "a sketch", None]
    with pytest.raises(NameError, match="undefined_name"):
        run_blocks(doc)


def test_a_block_needing_a_missing_extra_is_skipped_and_runs_where_it_is_installed(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- doctest: requires no_such_module_h8 -->\n```python\nimport no_such_module_h8\n```\n\n"
                   "<!-- doctest: requires json, os.path -->\n```python\nimport json\nn = json.loads('2')\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [b[2] for b in blocks(doc)] == ["needs no_such_module_h8 (an optional extra), not installed", None]
    assert run_blocks(doc) == 1


# -- wording the docs and demos promise --------------------------------------------------------
def test_federated_doc_says_single_survivor_rounds_differ():
    """docs/federated.md: seeded runs differ by numerical error, except a single-survivor round."""
    import numpy as np

    from ml.federated import train
    from ml.models import LogisticRegression

    text = " ".join((ROOT / "docs" / "federated.md").read_text().split())
    assert "a round with a single survivor is skipped by the secure aggregators" in text
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(float)
    clients = [(X[i::4], y[i::4]) for i in range(4)]
    plain, secure = (train(LogisticRegression(3), clients, (X, y), aggregator=a, rounds=3,
                           clients_per_round=2, dropout=0.4, seed=0, progress=False)
                     for a in ("plaintext", "ckks"))
    # rounds 1-2: both clients survive, same model up to the numerical error
    for p, s in zip(plain.rounds[:2], secure.rounds[:2]):
        assert p.survivors == s.survivors == 2 and abs(p.loss - s.loss) < 1e-3
    # round 3: one survivor; plaintext applies its update, the secure aggregator skips the round
    p, s = plain.rounds[2], secure.rounds[2]
    assert (p.survivors, p.skipped) == (1, False) and s.skipped and "1 client(s) survive" in s.note
    assert s.loss == pytest.approx(secure.rounds[1].loss) and p.loss != pytest.approx(s.loss)


def test_readme_cost_table_comes_from_the_recorded_run():
    """Every row names a benchmark of the recorded run, and the figures match its records."""
    import json

    from bench.__main__ import discover

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Measured costs", 1)[1].split("\n## ", 1)[0]
    recorded = re.search(r"\[docs/bench/([0-9-]+)\.json\]", section)
    assert recorded, "the section names the file of the recorded run"
    run = json.loads((ROOT / "docs" / "bench" / f"{recorded[1]}.json").read_text())
    assert run["date"] == recorded[1]
    rows = [r.split("|")[1:-1] for r in section.splitlines() if r.startswith("| ") and "`python3 -m bench" in r]
    assert len(rows) >= 15
    for cells in rows:
        name = re.search(r"`python3 -m bench (\w+)", cells[-1])[1]
        assert name in discover() and name in run["records"], name
        quick = "--quick" in cells[-1]
        assert quick == ("--quick" in run["commands"][name]), name
    records = run["records"]
    cmp_row = next(c for c in rows if c[0].strip() == "comparison `x < y`")
    assert cmp_row[2].strip() == f"{records['cmp'][0]['seconds']:.3f} s"
    mil = next(c for c in rows if c[0].strip() == "Yao's millionaires")
    assert f"{records['millionaires'][0]['seconds']:.2f} s" in mil[2]
    assert mil[5].strip() == f"{records['millionaires'][0]['bytes_per_party']:,.0f} B"
    mul = next(c for c in rows if c[0].strip() == "elementwise product")
    assert mul[2].strip() == f"{records['mul'][0]['seconds']:.3f} s"
    for cells in (c for c in rows if "`python3 -m bench flnet`" in c[-1]):
        n, values = re.search(r"(\d+) client processes x (\S+) values", cells[1]).groups()
        rec = next(r for r in records["flnet"] if r["params"] == {
            "aggregator": "secagg+" if cells[0].strip().startswith("SecAgg+") else "plaintext",
            "clients": int(n), "values": int(values.replace("10^5", "100000"))})
        assert cells[2].strip().startswith(f"{rec['seconds']:.3f} s"), cells[1]
        assert cells[4].strip() == f"{rec['ratio']:.1f}", cells[1]
