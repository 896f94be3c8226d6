"""A base install (no extras) runs every documented API, or names the extra to install.

tqdm (``progress`` extra) and matplotlib (``plot`` extra) are absent when
``sys.modules[name] is None``: any import of them then fails, as after a plain
``pip install concilium``.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ml.federated import History, train
from ml.models import LogisticRegression
from mpc.optional import MissingExtra, require

OPTIONAL = ("tqdm", "matplotlib", "sklearn", "torch")


def absent(monkeypatch, *names):
    for name in list(sys.modules):
        if name.partition(".")[0] in names:
            monkeypatch.delitem(sys.modules, name)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def small_run(**kw):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(float)
    clients = [(X[i::3], y[i::3]) for i in range(3)]
    return train(LogisticRegression(3), clients, (X, y), rounds=2, seed=1, **kw)


def test_train_without_progress_never_imports_tqdm(monkeypatch, capsys):
    absent(monkeypatch, "tqdm")
    history = small_run(progress=False)
    assert len(history.rounds) == 2
    assert capsys.readouterr().err == ""


def test_progress_without_tqdm_prints_a_plain_final_line(monkeypatch, capsys):
    absent(monkeypatch, "tqdm")
    small_run(progress=True, label="demo")
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.strip().splitlines()[-1].startswith("demo: round 2/2 acc=")


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    absent(monkeypatch, "matplotlib")
    history = small_run(progress=False)
    with pytest.raises(MissingExtra, match=r"History\.plot.*pip install 'concilium\[plot\]'") as exc:
        history.plot(tmp_path / "run.png")
    assert isinstance(exc.value, ModuleNotFoundError) and exc.value.name == "matplotlib"
    assert not (tmp_path / "run.png").exists()


def test_require_returns_an_installed_module():
    assert require("json", "none", "a test").dumps([1]) == "[1]"


def test_history_plot_still_works_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    h = History("plaintext", {}, [])
    assert h.plot(tmp_path / "p.png").stat().st_size > 0


def test_every_module_imports_without_the_optional_packages():
    """No module of mpc, protocols or ml imports tqdm, matplotlib, sklearn or torch at import time."""
    code = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        for name in {OPTIONAL!r}:
            sys.modules[name] = None
        import mpc, protocols, ml
        names = []
        for pkg in (mpc, protocols, ml):
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(info.name)
                names.append(info.name)
        print(len(names))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 50


def test_from_onnx_without_onnx_names_the_extra(monkeypatch):
    from ml.inference import from_onnx

    absent(monkeypatch, "onnx")
    with pytest.raises(MissingExtra, match=r"concilium\[onnx\]"):
        from_onnx(b"anything")
