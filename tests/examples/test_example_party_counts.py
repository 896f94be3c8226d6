"""Examples with a fixed number of parties say what they need instead of failing inside the protocol."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import mpc

ROOT = Path(__file__).resolve().parents[2]


def _example(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, programs", [("millionaires", ["program", "classic_program"]),
                                            ("vertical_credit", ["program", "paillier_program"])])
def test_a_two_party_example_refuses_three_parties_by_name(name, programs):
    module = _example(name)
    for prog in programs:
        with pytest.raises(mpc.ParameterError, match="is for 2 parties .* not 3") as info:
            mpc.run(getattr(module, prog), 3, inputs=[None] * 3, preprocessing=None, timeout=10)
        assert info.value.party == 0


def test_mpc_run_millionaires_with_three_local_parties_says_it_needs_two():
    proc = subprocess.run([sys.executable, "-m", "mpc.cli", "run", "examples/millionaires.py", "--local", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "for 2 parties" in proc.stderr and "--local 2" in proc.stderr
    assert "IndexError" not in proc.stderr
