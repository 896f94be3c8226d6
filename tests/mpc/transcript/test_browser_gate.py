"""Without Chromium the browser tests skip with one reason, unless CI requires the browser.

``python3 -m pytest`` must pass on a machine with nothing but Python (issue 18 §1), and
``.ci/run`` sets ``CONCILIUM_REQUIRE_BROWSER=1`` so that there a missing browser fails.
The browser is hidden from a pytest subprocess by an empty ``PATH`` and no ``$CHROMIUM``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
OTHER = "tests/mpc/transport/test_wire.py::test_non_numeric_dtype_refused"  # another test still runs


def run_browser_tests(tmp_path, **env):
    empty = tmp_path / "bin"
    empty.mkdir()
    base = {k: v for k, v in os.environ.items()
            if k not in ("CHROMIUM", "CONCILIUM_REQUIRE_BROWSER", "PYTEST_ADDOPTS")}
    base.update(PATH=str(empty), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-rs",  # no workers
         "tests/mpc/transcript/test_transcript_browser.py", OTHER],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_missing_browser_skips_with_the_package_to_install(tmp_path):
    proc = run_browser_tests(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout
    assert "SKIPPED" in proc.stdout and "'chromium' package" in proc.stdout
    assert "error" not in proc.stdout.lower()


@pytest.mark.slow
def test_missing_browser_fails_when_ci_requires_it(tmp_path):
    proc = run_browser_tests(tmp_path, CONCILIUM_REQUIRE_BROWSER="1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "skipped" not in proc.stdout
    assert "CONCILIUM_REQUIRE_BROWSER is set" in proc.stdout
    assert " errors" in proc.stdout and "1 passed" in proc.stdout
