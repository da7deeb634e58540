"""Stage `prepare`: build the dataset named in params `data` as Parquet shards plus dataset.json."""

from __future__ import annotations

import time

from pipelines import _stage


def main() -> None:
    args = _stage.parser(__doc__).parse_args()
    params = _stage.load(args)
    if _stage.dry_run(args, {"data": params.data.model_dump()}):
        return
    from components.data.sources import prepare

    t0 = time.perf_counter()
    with _stage.work():
        spec = prepare(params)
    counts = ", ".join(f"{k} {v}" for k, v in spec.counts.items())
    print(f"prepared {spec.name} {spec.channels}x{spec.resolution}x{spec.resolution} ({counts}) "
          f"in {time.perf_counter() - t0:.1f}s -> {params.data.out_dir}")


if __name__ == "__main__":
    _stage.run(main)
