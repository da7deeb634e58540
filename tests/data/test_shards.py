import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from components.data import DataError, ShardStream, load_spec, read_split, to_float, write_dataset


def _splits(n=300, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, m in (("train", n), ("val", 40), ("test", 50)):
        x = rng.integers(0, 256, (m, 3, 8, 8), dtype=np.uint8)
        y = rng.integers(0, 10, m)
        out[split] = (x, y, {"factor_a": rng.integers(0, 5, m)})
    return out


def test_round_trip_keeps_pixels_labels_factors_and_manifest(tmp_path):
    splits = _splits()
    spec = write_dataset(tmp_path / "ds", name="toy", splits=splits, classes=list("abcdefghij"), source="test", shard_rows=128)
    assert spec.counts == {"train": 300, "val": 40, "test": 50}
    assert [s["rows"] for s in spec.shards["train"]] == [128, 128, 44]
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert manifest["resolution"] == 8 and manifest["channels"] == 3 and manifest["binary"] is False
    assert all(len(s["sha256"]) == 64 for s in manifest["shards"]["train"])
    for split, (x, y, _) in splits.items():
        xs, ys = read_split(tmp_path / "ds", load_spec(tmp_path / "ds"), split)
        assert np.array_equal(xs, x) and np.array_equal(ys, y)
    table = pq.read_table(tmp_path / "ds" / "train-00000.parquet")
    assert table.column("factor_a").to_pylist() == splits["train"][2]["factor_a"][:128].tolist()
    assert set(table.column("split").to_pylist()) == {"train"}


def test_tampered_shard_is_refused_by_name(tmp_path):
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(), classes=list("abcdefghij"), source="t", shard_rows=128)
    shard = tmp_path / "ds" / "train-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="train-00001.parquet.*sha256"):
        load_spec(tmp_path / "ds")
    with pytest.raises(DataError, match="train-00001.parquet"):
        ShardStream(tmp_path / "ds", load_spec(tmp_path / "ds", verify=False), "train", 16)


def test_truncated_and_missing_shards_are_refused_by_name(tmp_path):
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(), classes=list("abcdefghij"), source="t", shard_rows=128)
    shard = tmp_path / "ds" / "val-00000.parquet"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(DataError, match="val-00000.parquet.*truncated"):
        load_spec(tmp_path / "ds")
    shard.unlink()
    with pytest.raises(DataError, match="val-00000.parquet.*missing"):
        load_spec(tmp_path / "ds")


def test_missing_manifest_says_how_to_make_it(tmp_path):
    with pytest.raises(DataError, match="dataset.json.*prepare"):
        load_spec(tmp_path)


def test_rewrite_is_atomic_and_leaves_no_temporary_dir(tmp_path):
    for seed in (0, 1):
        write_dataset(tmp_path / "ds", name="toy", splits=_splits(seed=seed), classes=list("abcdefghij"), source="t", shard_rows=128)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_stream_gives_equal_steps_per_rank_and_covers_the_split(tmp_path):
    splits = _splits(n=1000)
    write_dataset(tmp_path / "ds", name="toy", splits=splits, classes=list("abcdefghij"), source="t", shard_rows=100)
    spec = load_spec(tmp_path / "ds")
    streams = [ShardStream(tmp_path / "ds", spec, "train", 50, rank=r, world_size=2, seed=0, buffer_rows=200) for r in range(2)]
    batches = [list(s.epoch(0)) for s in streams]
    assert [len(b) for b in batches] == [10, 10]
    seen = torch.cat([x.reshape(x.shape[0], -1) for b in batches for x, _ in b])
    assert len({row.numpy().tobytes() for row in seen}) == 1000, "one epoch over 2 ranks sees every image once"
    again = [x for x, _ in ShardStream(tmp_path / "ds", spec, "train", 50, 0, 2, seed=0, buffer_rows=200).epoch(0)]
    assert all(torch.equal(a, b) for a, b in zip(again, [x for x, _ in batches[0]], strict=True)), "deterministic order"
    other = [x for x, _ in streams[0].epoch(1)]
    assert not all(torch.equal(a, b) for a, b in zip(other, again, strict=True)), "reshuffled each epoch"


def test_short_epochs_draw_a_different_subset_each_epoch(tmp_path):
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(n=1000), classes=list("abcdefghij"), source="t", shard_rows=100)
    stream = ShardStream(tmp_path / "ds", load_spec(tmp_path / "ds"), "train", 50, rank=0, world_size=2, seed=0,
                         buffer_rows=200, epoch_images=300)
    first, second = ([x.reshape(x.shape[0], -1) for x, _ in stream.epoch(e)] for e in (0, 1))
    assert stream.steps_per_epoch == 3 and len(first) == len(second) == 3, "300 images over 2 ranks of 50"
    assert {r.numpy().tobytes() for b in first for r in b} != {r.numpy().tobytes() for b in second for r in b}


def test_stream_memory_is_bounded_by_its_buffer(tmp_path):
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(n=2000), classes=list("abcdefghij"), source="t", shard_rows=1024)
    stream = ShardStream(tmp_path / "ds", load_spec(tmp_path / "ds"), "train", 32, seed=0, buffer_rows=64)
    assert len(stream.units) >= 2, "shards are read by row group, never whole"
    assert sum(1 for _ in stream.epoch(0)) == 2000 // 32


def test_to_float_is_the_one_normalisation():
    x = to_float(np.array([0, 128, 255], dtype=np.uint8))
    assert x.dtype == torch.float32 and torch.allclose(x, torch.tensor([0.0, 128 / 255, 1.0]))


def test_prepare_replaces_only_a_folder_it_wrote(tmp_path):
    """A folder with files prepare did not write is never removed (nor its .tmp sibling); one that prepare
    wrote (its marker) is replaced as a whole."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(DataError, match=r"mine: data.out_dir holds files prepare did not write .*nothing was deleted"):
        write_dataset(mine, name="toy", splits=_splits(), classes=list("abcdefghij"), source="t", shard_rows=128)
    assert (mine / "thesis.tex").read_text() == "years of work" and not (tmp_path / "mine.tmp").exists()
    (tmp_path / "ds.tmp").mkdir()
    (tmp_path / "ds.tmp" / "notes.txt").write_text("not ours")
    with pytest.raises(DataError, match="ds.tmp: data.out_dir holds files prepare did not write"):
        write_dataset(tmp_path / "ds", name="toy", splits=_splits(), classes=list("abcdefghij"), source="t", shard_rows=128)
    assert (tmp_path / "ds.tmp" / "notes.txt").exists()
    (tmp_path / "ds.tmp" / "notes.txt").unlink()
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(), classes=list("abcdefghij"), source="t", shard_rows=128)
    assert (tmp_path / "ds" / ".genzoo-prepared").is_file()
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(seed=1), classes=list("abcdefghij"), source="t", shard_rows=128)


def test_labels_outside_the_classes_are_refused(tmp_path):
    splits = _splits()
    splits["val"][1][3] = 10  # 10 classes: labels 0..9
    with pytest.raises(DataError, match=r"toy val split: label 10 at row 3 is outside 0..9"):
        write_dataset(tmp_path / "ds", name="toy", splits=splits, classes=list("abcdefghij"), source="t", shard_rows=128)
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.tmp").exists()


@pytest.mark.parametrize("edit,message", [
    (lambda m: m["shards"]["train"][0].pop("sha256"), r"shards.train\[0\] needs 'sha256'"),
    (lambda m: m["counts"].update(train=999), r"counts.train is 999 but its shards hold 300 rows"),
    (lambda m: m.pop("classes"), r"malformed manifest \(no 'classes'\)"),
    (lambda m: m.update(resolution="8"), r"'resolution' must be int"),
    (lambda m: m["shards"]["val"][0].update(file="../../etc/passwd"), r"must be a file name in the folder"),
])
def test_every_manifest_field_is_checked(tmp_path, edit, message):
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(), classes=list("abcdefghij"), source="t", shard_rows=128)
    path = tmp_path / "ds" / "dataset.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=message) as err:
        load_spec(tmp_path / "ds")
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_shard_whose_row_count_disagrees_with_the_manifest_is_refused(tmp_path):
    write_dataset(tmp_path / "ds", name="toy", splits=_splits(), classes=list("abcdefghij"), source="t", shard_rows=128)
    path = tmp_path / "ds" / "dataset.json"
    manifest = json.loads(path.read_text())
    manifest["shards"]["train"][0]["rows"] -= 28  # counts adjusted too: only the shard's own row count lies
    manifest["shards"]["train"][1]["rows"] += 28
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"train-00000.parquet: 128 rows but dataset.json says 100"):
        load_spec(tmp_path / "ds")
