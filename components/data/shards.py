"""Prepared data on disk: Parquet shards plus a `dataset.json` manifest, and their verified reader.

Layout of a prepared dataset directory:
    dataset.json                  name, resolution, channels, classes, counts per split, sha256 per shard
    <split>-00000.parquet ...     columns: pixels (fixed-size list of uint8, C*H*W), label, split,
                                  and one int column per generative factor where the source has them

Readers check every shard's size and sha256 against the manifest before use and name the bad shard.
Pixels stay uint8 on disk; `to_float` is the one place they are normalised (to [0, 1]).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components.errors import DataError
from components.io import sha256_file  # noqa: F401 - also this module's name for callers

if TYPE_CHECKING:
    import torch

MANIFEST = "dataset.json"
MARKER = ".genzoo-prepared"  # in every folder prepare writes: the only kind of folder it ever replaces
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What models and evaluation need to know about a prepared dataset."""

    name: str
    resolution: int
    channels: int
    classes: list[str]
    binary: bool  # every pixel is 0 or 255: a Bernoulli likelihood is exact
    counts: dict[str, int]
    shards: dict[str, list[dict]]  # split -> [{"file", "rows", "bytes", "sha256"}]
    factors: list[str] = field(default_factory=list)
    source: str = ""
    manifest_sha256: str = ""  # hash of dataset.json itself: the identity used in metric protocols

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.resolution, self.resolution)

    @property
    def num_classes(self) -> int:
        return len(self.classes)





def check_replaceable(path: Path) -> None:
    """prepare replaces its output folder as a whole: only a folder it wrote (its marker file, or an older
    prepare's dataset.json and shards and nothing else) or an absent/empty one may be removed."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise DataError(f"{path}: data.out_dir is a file, not a folder; choose a folder that prepare may own")
    entries = {p.name for p in path.iterdir()}
    if not entries or MARKER in entries:
        return
    if MANIFEST in entries and all(e == MANIFEST or e.endswith(".parquet") for e in entries):
        return  # written by a prepare from before the marker
    raise DataError(f"{path}: data.out_dir holds files prepare did not write (no {MARKER}); "
                    "choose a new or empty folder, nothing was deleted")


def write_dataset(
    out_dir: Path,
    *,
    name: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
    classes: list[str],
    source: str,
    shard_rows: int,
) -> DatasetSpec:
    """Write splits {split: (images uint8 (N, C, H, W), labels (N,), factors)} atomically to out_dir.

    Everything is written into a sibling temporary directory that replaces out_dir only when complete.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    for d in (out_dir, tmp):
        check_replaceable(d)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / MARKER).write_text("written by GenZoo's prepare; the folder is replaced as a whole on the next prepare\n")
    for split, (_, labels, _) in splits.items():
        bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
        if bad.size:
            shutil.rmtree(tmp)
            raise DataError(f"{name} {split} split: label {labels[bad[0]]} at row {bad[0]} is outside 0..{len(classes) - 1}")
    first = next(iter(splits.values()))[0]
    _, channels, height, width = first.shape
    binary = all(bool(np.isin(images, (0, 255)).all()) for images, _, _ in splits.values())
    shards: dict[str, list[dict]] = {}
    factor_names: list[str] = []
    for split, (images, labels, factors) in splits.items():
        factor_names = sorted(factors)
        shards[split] = []
        for i, start in enumerate(range(0, len(images), shard_rows)):
            stop = min(start + shard_rows, len(images))
            flat = np.ascontiguousarray(images[start:stop]).reshape(stop - start, -1)  # (n, C*H*W)
            pixels = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel(), pa.uint8()), flat.shape[1])
            cols = {
                "pixels": pixels,
                "label": pa.array(labels[start:stop].astype(np.int64)),
                "split": pa.array([split] * (stop - start)),
            }
            cols.update({k: pa.array(v[start:stop].astype(np.int64)) for k, v in sorted(factors.items())})
            fname = f"{split}-{i:05d}.parquet"
            pq.write_table(pa.table(cols), tmp / fname, row_group_size=1024, compression="zstd")
            shards[split].append(
                {"file": fname, "rows": stop - start, "bytes": (tmp / fname).stat().st_size,
                 "sha256": sha256_file(tmp / fname)}
            )
    manifest = {
        "name": name,
        "resolution": int(height),
        "channels": int(channels),
        "classes": list(classes),
        "binary": binary,
        "counts": {s: int(len(v[0])) for s, v in splits.items()},
        "factors": factor_names,
        "source": source,
        "shards": shards,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return load_spec(out_dir, verify=False)


MANIFEST_FIELDS = {"name": str, "resolution": int, "channels": int, "classes": list, "binary": bool, "counts": dict,
                   "shards": dict}
SHARD_FIELDS = {"file": str, "rows": int, "bytes": int, "sha256": str}


def _check_manifest(path: Path, raw) -> None:
    """Every field dataset.json must have, with its type, and counts that agree with the shards."""
    if not isinstance(raw, dict):
        raise DataError(f"{path}: malformed manifest (not a JSON object)")
    for key, typ in MANIFEST_FIELDS.items():
        if key not in raw:
            raise DataError(f"{path}: malformed manifest (no '{key}')")
        if not isinstance(raw[key], typ) or (typ is int and isinstance(raw[key], bool)):
            raise DataError(f"{path}: malformed manifest ('{key}' must be {typ.__name__}, got {raw[key]!r})")
    if raw["resolution"] < 1 or raw["channels"] < 1 or not raw["classes"]:
        raise DataError(f"{path}: malformed manifest (resolution, channels and classes must be positive)")
    for split, shards in raw["shards"].items():
        if not isinstance(shards, list):
            raise DataError(f"{path}: malformed manifest (shards.{split} must be a list)")
        for i, shard in enumerate(shards):
            for key, typ in SHARD_FIELDS.items():
                if not isinstance(shard, dict) or not isinstance(shard.get(key), typ):
                    raise DataError(f"{path}: malformed manifest (shards.{split}[{i}] needs '{key}' ({typ.__name__}))")
            if "/" in shard["file"] or shard["file"].startswith("."):
                raise DataError(f"{path}: malformed manifest (shards.{split}[{i}].file must be a file name in the folder)")
        rows = sum(sh["rows"] for sh in shards)
        if raw["counts"].get(split) != rows:
            raise DataError(f"{path}: counts.{split} is {raw['counts'].get(split)} but its shards hold {rows} rows")


def load_spec(data_dir: Path, verify: bool = True) -> DatasetSpec:
    """Read and check dataset.json; with verify, check every shard's size, sha256 and row count and name the
    first bad one."""
    data_dir = Path(data_dir)
    path = data_dir / MANIFEST
    if not path.is_file():
        raise DataError(f"{path}: no prepared dataset here; run `dvc repro prepare` first")
    blob = path.read_bytes()
    try:
        raw = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: malformed manifest ({err})") from None
    _check_manifest(path, raw)
    try:
        spec = DatasetSpec(**raw, manifest_sha256=hashlib.sha256(blob).hexdigest())
    except TypeError as err:
        raise DataError(f"{path}: malformed manifest ({err})") from None
    if verify:
        for split_shards in spec.shards.values():
            for shard in split_shards:
                verify_shard(data_dir, shard)
    return spec


def verify_shard(data_dir: Path, shard: dict) -> None:
    f = Path(data_dir) / shard["file"]
    if not f.is_file():
        raise DataError(f"{f}: shard listed in {MANIFEST} is missing")
    if f.stat().st_size != shard["bytes"]:
        raise DataError(f"{f}: shard size {f.stat().st_size} != {shard['bytes']} in {MANIFEST} (truncated or changed)")
    if sha256_file(f) != shard["sha256"]:
        raise DataError(f"{f}: shard sha256 does not match {MANIFEST} (changed on disk); re-run prepare")
    rows = pq.ParquetFile(f).metadata.num_rows
    if rows != shard["rows"]:
        raise DataError(f"{f}: {rows} rows but {MANIFEST} says {shard['rows']}")


def read_split(data_dir: Path, spec: DatasetSpec, split: str, limit: int | None = None):
    """Whole split in memory: (uint8 images (N, C, H, W), int64 labels (N,)). For evaluation-sized splits."""
    if split not in spec.shards:
        raise DataError(f"{Path(data_dir) / MANIFEST}: no split '{split}'; has {', '.join(spec.shards)}")
    images, labels, n = [], [], 0
    for shard in spec.shards[split]:
        table = pq.read_table(Path(data_dir) / shard["file"], columns=["pixels", "label"])
        x, y = _decode(table, spec)
        images.append(x)
        labels.append(y)
        n += len(y)
        if limit is not None and n >= limit:
            break
    x, y = np.concatenate(images), np.concatenate(labels)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


def read_factors(data_dir: Path, spec: DatasetSpec, split: str, limit: int | None = None) -> dict[str, np.ndarray]:
    """{factor: int64 indices (N,)} of a split, in read_split's row order; {} when the source has no factors."""
    if not spec.factors:
        return {}
    cols: dict[str, list] = {f: [] for f in spec.factors}
    for shard in spec.shards[split]:
        table = pq.read_table(Path(data_dir) / shard["file"], columns=list(spec.factors))
        for f in spec.factors:
            cols[f].append(table.column(f).to_numpy())
    return {f: np.concatenate(v)[:limit] for f, v in cols.items()}


def _decode(table: pa.Table, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    pixels = table.column("pixels").combine_chunks()
    flat = pixels.flatten().to_numpy(zero_copy_only=False)
    images = flat.reshape(len(pixels), *spec.shape)  # (n, C*H*W) -> (n, C, H, W)
    return images, table.column("label").to_numpy()


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]: the one normalisation in GenZoo (models rescale internally)."""
    import torch  # here, not at module level: stages that only read specs start without torch

    x = torch.as_tensor(images)
    return x.float().div_(255.0)


class ShardStream:
    """Streams (images, labels) batches of one split to one DDP rank, without loading the split.

    Units of work are (shard, row group) pairs; each epoch they are shuffled with (seed, epoch) and dealt
    round-robin to ranks, then rows are shuffled within a bounded buffer. Every rank yields exactly
    `steps_per_epoch` batches (wrapping around its units if it runs short) so DDP ranks stay in step.
    Memory is bounded by `buffer_rows` rows, whatever the dataset size.
    """

    def __init__(self, data_dir: Path, spec: DatasetSpec, split: str, batch_size: int, rank: int = 0,
                 world_size: int = 1, seed: int = 0, buffer_rows: int = 16384, epoch_images: int | None = None):
        self.data_dir, self.spec, self.split = Path(data_dir), spec, split
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.seed, self.buffer_rows = seed, buffer_rows
        for shard in spec.shards[split]:
            verify_shard(self.data_dir, shard)
        self.units = [
            (shard["file"], g)
            for shard in spec.shards[split]
            for g in range(pq.ParquetFile(self.data_dir / shard["file"]).num_row_groups)
        ]
        # epoch_images: a shorter "epoch" of that many images (all ranks together), e.g. for tuning trials
        images = min(spec.counts[split], epoch_images or spec.counts[split])
        self.steps_per_epoch = max(1, images // (batch_size * world_size))

    def epoch(self, epoch: int):
        """Yield steps_per_epoch (uint8 tensor (B, C, H, W), int64 tensor (B,)) batches for this rank."""
        import torch

        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(len(self.units))
        mine = [self.units[i] for i in order[self.rank :: self.world_size]] or [self.units[order[0]]]
        produced, buf_x, buf_y = 0, [], []
        files: dict[str, pq.ParquetFile] = {}
        unit = 0
        while produced < self.steps_per_epoch:
            fname, group = mine[unit % len(mine)]
            unit += 1
            pf = files.setdefault(fname, pq.ParquetFile(self.data_dir / fname))
            x, y = _decode(pf.read_row_group(group, columns=["pixels", "label"]), self.spec)
            buf_x.append(x)
            buf_y.append(y)
            if sum(len(b) for b in buf_y) < self.buffer_rows and unit % len(mine) != 0:
                continue
            xs, ys = np.concatenate(buf_x), np.concatenate(buf_y)
            perm = rng.permutation(len(ys))
            usable = len(ys) - len(ys) % self.batch_size
            for start in range(0, usable, self.batch_size):
                idx = perm[start : start + self.batch_size]
                yield torch.from_numpy(xs[idx]), torch.from_numpy(ys[idx])
                produced += 1
                if produced == self.steps_per_epoch:
                    return
            rest = perm[usable:]  # carry the remainder into the next buffer
            buf_x, buf_y = [xs[rest]], [ys[rest]]


def spec_dict(spec: DatasetSpec) -> dict:
    return asdict(spec)
