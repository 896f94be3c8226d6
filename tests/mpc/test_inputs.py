"""Each party's private input from its own file; the README's program runs the same three ways."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mpc
from mpc import cli
from mpc import config as cfgmod
from mpc.distributed import make_local_config, run_local
from mpc.errors import ParameterError
from mpc.inputs import load_input

ROOT = Path(__file__).resolve().parents[2]
READINGS = [np.array([120.0, 131.5]), np.array([118.0]), np.array([140.0, 99.5])]


def _readme_block() -> str:
    """The first Python block of README.md's "What it looks like" section, as written."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## What it looks like", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _readme_program_text() -> str:
    """The program part of that block: everything before it runs ``mpc.run``."""
    block = _readme_block()
    assert "def program(party, readings)" in block
    return block.split("\nresult = mpc.run(", 1)[0] + "\n"


def test_the_readme_program_gives_the_same_output_in_one_process_as_processes_and_from_files(tmp_path):
    # 1. the README block itself, in one process
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_readme_block(), "README.md", "exec"), {"__name__": "readme"})
    in_process = out.getvalue().splitlines()[0]
    # the block's own inputs are the ones the other two ways read from files
    assert re.search(r"inputs=\[np.array\(\[120.0, 131.5\]\),\s*np.array\(\[118.0\]\), "
                     r"np.array\(\[140.0, 99.5\]\)\]", _readme_block())
    prog = tmp_path / "readme_prog.py"
    prog.write_text(_readme_program_text())
    files = []
    for i, r in enumerate(READINGS):
        files.append(tmp_path / f"readings{i}.npy")
        np.save(files[-1], r)
    # 2. `mpc run --local 3 --inputs`, one process per party
    proc = subprocess.run([sys.executable, "-m", "mpc.cli", "run", str(prog), "--local", "3",
                           "--inputs", *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    cli_result = proc.stdout.split("result (all 3 parties): ", 1)[1].splitlines()[0]
    # 3. run_local with inputs
    res = run_local(f"{prog}:program", 3, inputs=READINGS, timeout=30)
    assert in_process == cli_result == str(res.outputs[0]) == "[609.   5.]"
    assert all(np.array_equal(o, res.outputs[0]) for o in res.outputs)


def test_one_party_per_config_reads_its_own_input_file(tmp_path):
    prog = tmp_path / "readme_prog.py"
    prog.write_text(_readme_program_text())
    cfg = make_local_config(tmp_path, 3, dealer=False, timeout=30)
    forms = [("readings0.json", lambda p, a: p.write_text(json.dumps(a.tolist()))),
             ("readings1.csv", lambda p, a: p.write_text("reading\n" + "\n".join(map(str, a)))),
             ("readings2.npz", lambda p, a: np.savez(p, a))]
    paths = []
    for (name, write), r in zip(forms, READINGS):
        paths.append(tmp_path / name)
        write(paths[-1], r)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-m", "mpc.cli", "run", str(prog), "--party", str(i),
                               "--config", str(cfg), "--input", str(paths[i])], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    for i, (out, err) in enumerate(outs):
        assert procs[i].returncode == 0, err
        assert f"party {i}: [609.   5.]" in out


def test_run_local_inputs_match_mpc_run_exactly():
    inputs = [np.arange(3, dtype=np.int32), {"a": (1, 2.5), "b": "x"}]
    res = run_local(_echo, 2, inputs=inputs, preprocessing=None, timeout=20)
    here = mpc.run(_echo, 2, inputs=inputs, preprocessing=None)
    assert res.outputs[1] == here.outputs[1] == inputs[1]
    assert res.outputs[0].dtype == np.int32 and np.array_equal(res.outputs[0], here.outputs[0])
    with pytest.raises(ParameterError, match="inputs has 1 entries for 2 parties"):
        run_local(_echo, 2, inputs=[1], preprocessing=None)
    with pytest.raises(ParameterError, match="party 1's input cannot travel"):
        run_local(_echo, 2, inputs=[1, object()], preprocessing=None)


def _echo(party, x):
    return x


# -- the file formats ----------------------------------------------------------------
def test_formats(tmp_path):
    a = np.array([[1.5, 2.0], [3.0, -4.25]])
    np.save(tmp_path / "a.npy", a)
    assert np.array_equal(load_input(tmp_path / "a.npy"), a)
    np.savez(tmp_path / "one.npz", a)
    assert np.array_equal(load_input(tmp_path / "one.npz"), a)
    np.savez(tmp_path / "named.npz", bp=a)
    got = load_input(tmp_path / "named.npz")
    assert list(got) == ["bp"] and np.array_equal(got["bp"], a)
    (tmp_path / "t.csv").write_text("x,y\n1.5,2\n3,-4.25\n")
    assert np.array_equal(load_input(tmp_path / "t.csv"), a)
    (tmp_path / "row.csv").write_text("1,2,3\n")
    assert load_input(tmp_path / "row.csv").shape == (3,)
    (tmp_path / "d.json").write_text('{"ages": [30, 41], "bp": [[1.5, 2], [3, -4.25]], "n": 2}')
    got = load_input(tmp_path / "d.json")
    assert isinstance(got["ages"], np.ndarray) and got["ages"].tolist() == [30, 41]
    assert np.array_equal(got["bp"], a) and got["n"] == 2


@settings(max_examples=15, deadline=None)
@given(arrays(st.sampled_from([np.float64, np.int64, np.uint8]), st.integers(1, 6),
              elements=st.integers(-100, 100).map(abs)))
def test_npy_json_and_csv_round_trip(tmp_path_factory, arr):
    d = tmp_path_factory.mktemp("rt")
    np.save(d / "x.npy", arr)
    got = load_input(d / "x.npy")
    assert got.dtype == arr.dtype and np.array_equal(got, arr)
    (d / "x.json").write_text(json.dumps(arr.tolist()))
    assert np.array_equal(load_input(d / "x.json"), arr)
    (d / "x.csv").write_text("\n".join(str(v) for v in arr.tolist()))
    assert np.array_equal(load_input(d / "x.csv"), arr.astype(float))


@pytest.mark.parametrize("name, content, message", [
    ("missing.npy", None, "party 2's input file '.*missing.npy' not found"),
    ("x.txt", "1,2", "unknown format '.txt'"),
    ("words.csv", "a,b\n1,oops\n", "row 1 is not all numbers"),
    ("ragged.csv", "1,2\n3\n", "row 2 has 1 fields"),
    ("str.json", '["a", "b"]', "not numbers"),
    ("top.json", '"secret-ish"', "holds a str, not numbers"),
    ("bad.json", "{not json", "not a valid .json file"),
    ("bad.npy", "garbage", "not a valid .npy file"),
])
def test_clear_errors_name_the_party_and_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ParameterError, match=message):
        load_input(path, 2)


def test_non_numeric_and_pickled_arrays_are_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(ParameterError, match="party 0's input file .* holds <U1 values, not numbers"):
        load_input(tmp_path / "s.npy", 0)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ParameterError, match="pickled objects are refused"):
        load_input(tmp_path / "o.npy", 0)
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(ParameterError, match="not found"):
        load_input(tmp_path / "dir.npy", 0)


def test_cli_input_errors(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.ones(2))
    a = str(tmp_path / "a.npy")
    with pytest.raises(SystemExit, match="--local 3 needs 3 --inputs files .* got 2"):
        cli.main(["run", "x.py", "--local", "3", "--inputs", a, a])
    with pytest.raises(SystemExit, match="--input FILE is for --party I"):
        cli.main(["run", "x.py", "--local", "2", "--input", a])
    cfg = cfgmod.load(make_local_config(tmp_path, 2, dealer=False))
    with pytest.raises(SystemExit, match="--inputs F0 F1 ... is for --local N"):
        cli.main(["run", "x.py", "--party", "0", "--config", str(cfg.path), "--inputs", a, a])
    assert cli.main(["run", "x.py", "--local", "2", "--inputs", a, str(tmp_path / "gone.csv")]) == 2
    assert "party 1's input file" in capsys.readouterr().err


def test_run_local_takes_a_function_object_from_a_module_imported_off_the_usual_path(tmp_path, monkeypatch):
    folder = tmp_path / "mylib"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "progs.py").write_text("def double(party, x):\n    return x * 2\n")
    monkeypatch.syspath_prepend(str(folder))
    import importlib
    progs = importlib.import_module("pkg.progs")
    from mpc.distributed import import_root
    assert import_root(progs.double) == str(folder.resolve())
    res = run_local(progs.double, 2, inputs=[np.arange(2), np.arange(3)], preprocessing=None, timeout=20)
    assert [o.tolist() for o in res.outputs] == [[0, 2], [0, 2, 4]]
    monkeypatch.delitem(sys.modules, "pkg.progs")
    monkeypatch.delitem(sys.modules, "pkg")


# -- review fixes ----------------------------------------------------------------------
def test_a_csv_or_json_saved_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    # Excel's "CSV UTF-8" starts with a BOM: the first data row must not be taken for a header
    (tmp_path / "bom.csv").write_text("1.5,2\n3,4\n", encoding="utf-8-sig")
    assert load_input(tmp_path / "bom.csv", 0).tolist() == [[1.5, 2.0], [3.0, 4.0]]
    (tmp_path / "head.csv").write_text("x,y\n1.5,2\n", encoding="utf-8-sig")
    assert load_input(tmp_path / "head.csv", 0).tolist() == [1.5, 2.0]
    (tmp_path / "bom.json").write_text("[1, 2.5]", encoding="utf-8-sig")
    assert load_input(tmp_path / "bom.json", 0).tolist() == [1.0, 2.5]


def test_an_npz_with_a_member_that_is_not_an_array_is_refused_clearly(tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ParameterError, match=r"party 1's input file .*x.npz.*not a valid .npz file"):
        load_input(tmp_path / "x.npz", 1)


@pytest.mark.parametrize("shape", [(2**40,), (2**20, 2**20, 8)])
def test_an_npy_header_announcing_more_data_than_the_file_holds_is_refused_before_allocating(tmp_path, shape):
    import numpy.lib.format as fmt
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:                       # a truncated or doctored file: 16 bytes of data
        fmt.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})
        f.write(bytes(16))
    with pytest.raises(ParameterError, match=r"party 0's input file .*huge.npy.*not a valid .npy file"):
        load_input(path, 0)
    import zipfile
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("arr_0.npy", path.read_bytes())
    with pytest.raises(ParameterError, match=r"party 0's input file .*huge.npz.*not a valid .npz file"):
        load_input(tmp_path / "huge.npz", 0)


def test_a_truncated_npy_is_refused(tmp_path):
    np.save(tmp_path / "t.npy", np.arange(100.0))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-8])
    with pytest.raises(ParameterError, match="not a valid .npy file"):
        load_input(tmp_path / "t.npy", 0)


def test_a_deeply_nested_json_is_refused_clearly(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ParameterError, match=r"party 0's input file .*deep.json.*not a valid .json file"):
        load_input(tmp_path / "deep.json", 0)


@pytest.mark.parametrize("first", ["1,,3", "1,NA,3", "2.5,n/a,7"])
def test_a_first_data_row_with_a_gap_is_an_error_not_a_skipped_header(tmp_path, first):
    (tmp_path / "gap.csv").write_text(f"{first}\n4,5,6\n")
    with pytest.raises(ParameterError, match="row 1 is not all numbers"):
        load_input(tmp_path / "gap.csv", 0)
    (tmp_path / "head.csv").write_text("age,bp,weight\n1,2,3\n")     # a real header is still skipped
    assert load_input(tmp_path / "head.csv", 0).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("text", ["[1, true]", "[[2.5, false], [1, 2]]", '{"a": [0, true]}'])
def test_booleans_inside_json_lists_are_refused_like_top_level_ones(tmp_path, text):
    (tmp_path / "b.json").write_text(text)
    with pytest.raises(ParameterError, match="not numbers"):
        load_input(tmp_path / "b.json", 0)


def test_a_zero_dimensional_input_keeps_its_shape_across_processes(tmp_path):
    np.save(tmp_path / "s.npy", np.float64(2.5))            # a scalar saved with np.save
    scalar = load_input(tmp_path / "s.npy", 0)
    assert scalar.shape == ()
    inputs = [scalar, np.array(7, dtype=np.int32)]
    here = mpc.run(_echo, 2, inputs=inputs, preprocessing=None)
    res = run_local(_echo, 2, inputs=inputs, preprocessing=None, timeout=20)
    for got, want in zip(res.outputs, here.outputs):
        assert got.shape == want.shape == () and got.dtype == want.dtype and got == want


def test_an_input_whose_dtype_cannot_travel_names_its_party(tmp_path):
    np.save(tmp_path / "h.npy", np.ones(2, dtype=np.float16))
    half = load_input(tmp_path / "h.npy", 1)
    with pytest.raises(ParameterError, match="party 1's input cannot travel"):
        run_local(_echo, 2, inputs=[np.ones(2), half], preprocessing=None, timeout=20)
