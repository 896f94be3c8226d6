"""Files holding shares or keys: mode 0600, a temporary name then a rename, no planted link followed."""

import os
import stat

import numpy as np
import pytest

import mpc
from mpc import cli
from mpc.errors import ParameterError
from mpc.fileio import private_file
from mpc.preprocessing import store


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _save(path):
    def offline(party):
        party.preprocessing.prefetch("mul", (3,), (3,), count=2)
        if party.id == 0:
            return store.save(party.preprocessing, path, party=party)
        return None

    return mpc.run(offline, 2).outputs[0]


def test_preprocessing_files_are_private_and_replace_a_planted_link(tmp_path):
    path = tmp_path / "p0.npz"
    assert _save(path) == 2
    assert _mode(path) == 0o600
    # someone plants a link where the next file goes: the file replaces the link, the
    # link's target (here a dangling one, then an existing file) is never written
    for target_exists in (False, True):
        target = tmp_path / f"stolen{target_exists}"
        if target_exists:
            target.write_bytes(b"theirs")
        path.unlink()
        path.symlink_to(target)
        assert _save(path) == 2
        assert not path.is_symlink() and _mode(path) == 0o600
        assert target.exists() == target_exists
        if target_exists:
            assert target.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p0.npz", "stolenTrue"]  # no temporaries
    store.load(path, party_id=0)


def test_keys_new_never_follows_a_link_and_force_replaces_atomically(tmp_path, capsys):
    out = tmp_path / "keys"
    out.mkdir()
    target = tmp_path / "elsewhere.crt"
    (out / "party1.crt").symlink_to(target)           # dangling: exists() is False
    assert cli.main(["keys", "new", "--party", "1", "--out", str(out)]) == 2
    assert not target.exists()
    assert cli.main(["keys", "new", "--party", "1", "--out", str(out), "--force"]) == 0
    assert not target.exists() and not (out / "party1.crt").is_symlink()
    assert _mode(out / "party1.key") == 0o600
    first = (out / "party1.crt").read_bytes()
    target.write_bytes(b"keep me")
    (out / "party1.key").unlink()
    (out / "party1.key").symlink_to(target)
    assert cli.main(["keys", "new", "--party", "1", "--out", str(out), "--force"]) == 0
    assert target.read_bytes() == b"keep me"
    assert _mode(out / "party1.key") == 0o600 and (out / "party1.crt").read_bytes() != first
    assert sorted(p.name for p in out.iterdir()) == ["party1.crt", "party1.key"]


def test_private_file_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with private_file(path, replace=True) as fh:
            fh.write(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]
    with pytest.raises(ParameterError, match="already exists"):
        with private_file(path, replace=False) as fh:
            fh.write(np.zeros(3).tobytes())
