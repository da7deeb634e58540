"""Data: sources (procedural dSprites, torchvision sets), Parquet shards with a manifest, streaming readers."""

from components.data.shards import (
    DataError,
    DatasetSpec,
    ShardStream,
    load_spec,
    read_split,
    to_float,
    write_dataset,
)

__all__ = ["DataError", "DatasetSpec", "ShardStream", "load_spec", "prepare", "read_split", "to_float"]


def prepare(params) -> DatasetSpec:
    """Build the dataset params.data describes and write it to params.data.out_dir (atomically)."""
    from components.data.sources import load_source

    cfg = params.data
    splits, classes, source = load_source(cfg, params.root)
    return write_dataset(params.path(cfg.out_dir), name=cfg.dataset, splits=splits, classes=classes,
                         source=source, shard_rows=cfg.shard_rows)
