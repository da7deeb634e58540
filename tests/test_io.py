"""components/io.py: whole files or none, and file digests."""

import hashlib

import pytest

from components.io import atomic_write, save_torch, sha256_file, write_json


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_json(target, {"a": 1})

    def half(tmp):
        tmp.write_text('{"a": ')  # half a file, then the writer dies
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half)
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"], "no temporary left behind"


def test_the_temporary_keeps_the_suffix_for_writers_that_infer_the_format(tmp_path):
    seen = []
    atomic_write(tmp_path / "grid.png", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"x")))
    assert seen == [".png"] and (tmp_path / "grid.png").read_bytes() == b"x"


def test_torch_state_round_trips_with_weights_only_and_the_digest_is_sha256(tmp_path):
    import torch

    path = save_torch(tmp_path / "m.pt", {"w": torch.ones(2)})
    assert torch.load(path, weights_only=True)["w"].tolist() == [1.0, 1.0]
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
