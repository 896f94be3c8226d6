"""What a plain ``pip install concilium`` (no extras) must run (issue 18 §2).

Run by .ci/run with the Python of a fresh venv into which the checkout was
installed without extras, from a directory outside the checkout:
the README's first snippet, one ``ml.federated.train(..., progress=False)``
on small synthetic data, and ``mpc run examples/hospital_stats.py --local 3``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("tqdm", "matplotlib", "sklearn", "pytest", "hypothesis")


def check_base_install() -> None:
    import mpc
    if Path(mpc.__file__).resolve().is_relative_to(ROOT):
        raise SystemExit(f"mpc was imported from the checkout ({mpc.__file__}), not the install")
    for name in EXTRAS:
        try:
            __import__(name)
        except ImportError:
            continue
        raise SystemExit(f"{name} is installed: this is not a base install")


def readme_snippet() -> None:
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})


def one_training() -> None:
    import numpy as np

    from ml.federated import train
    from ml.models import LogisticRegression

    rng = np.random.default_rng(0)  # noqa: TID251 -- simulated data
    X = rng.normal(size=(90, 4))
    y = (X @ np.array([1.0, -1.0, 0.5, 2.0]) > 0).astype(float)
    clients = [(X[i:90:3], y[i:90:3]) for i in range(3)]
    history = train(LogisticRegression(4), clients, (X, y), aggregator="secagg", rounds=3,
                    seed=1, progress=False)
    print("train(progress=False): final accuracy", history.final_accuracy)
    if not history.final_accuracy > 0.7:
        raise SystemExit("training on separable data did not learn")


def mpc_run_local() -> None:
    mpc_cli = Path(sys.executable).with_name("mpc")
    cmd = [str(mpc_cli), "run", str(ROOT / "examples" / "hospital_stats.py"), "--local", "3"]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, timeout=600)


if __name__ == "__main__":
    check_base_install()
    readme_snippet()
    one_training()
    mpc_run_local()
    print("base install: README snippet, train(progress=False) and mpc run --local 3 work")
