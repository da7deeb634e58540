"""Data: sources (procedural dSprites, torchvision sets, an image folder) and `sources.prepare`, Parquet shards
with a manifest, streaming readers. Package files hold names, not orchestration."""

from components.data.shards import (
    DataError,
    DatasetSpec,
    ShardStream,
    load_spec,
    read_split,
    to_float,
    write_dataset,
)

__all__ = ["DataError", "DatasetSpec", "ShardStream", "load_spec", "read_split", "to_float", "write_dataset"]
