"""`genzoo`: the registry commands (promote, rollback, sample and translate by alias); stages run through dvc.yaml."""

from __future__ import annotations

import argparse
import json
import sys

from pipelines import _stage


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genzoo", description=__doc__)
    p.add_argument("--params", default="params.yaml")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("promote", help="promote a trained model, or --rollback to the previous champion")
    pr.add_argument("model")
    pr.add_argument("--rollback", action="store_true", help="make previous-champion the champion again")
    sa = sub.add_parser("sample", help="sample from a registered model by alias and save an image grid")
    sa.add_argument("--model", required=True)
    sa.add_argument("--alias", default="champion")
    sa.add_argument("-n", type=int, default=64, help=f"number of images (default 64, at most {MAX_N})")
    sa.add_argument("-o", "--output", default="samples.png")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--label", help="conditional models: class name or index to draw (default: classes at random)")
    tr = sub.add_parser("translate", help="translate images with a registered translation model by alias; saves rows of "
                                          "sources, translations and the cycle back")
    tr.add_argument("--model", required=True)
    tr.add_argument("--alias", default="champion")
    tr.add_argument("--direction", default="a2b", help="a2b (default) or b2a")
    tr.add_argument("-n", type=int, default=8, help=f"images (default 8, at most {MAX_N}): the first n of the source domain")
    tr.add_argument("--images", help=".npy of images (N, C, H, W), uint8 or floats in [0, 1] (default: the "
                                     "prepared test split's source-domain images)")
    tr.add_argument("-o", "--output", default="translations.png")
    return p


MAX_N = 4096  # images one command draws or translates (a 64 x 64 grid; memory ~ N x C x H x W floats)


def check_args(params, args) -> None:
    """Every CLI input checked before a model is loaded or a file written: the model name, -n, -o, and for
    translate the --images array (dtype, range, finiteness, shape (N, C, H, W) against the prepared data)."""
    import os
    from pathlib import Path

    from components.errors import ConfigError
    from components.models import MODELS

    if args.model not in MODELS:
        raise ConfigError(f"--model: unknown model {args.model!r}; allowed: {', '.join(MODELS)}")
    if args.command not in ("sample", "translate"):
        return
    if not 1 <= args.n <= MAX_N:
        raise ConfigError(f"-n: must be between 1 and {MAX_N} (got {args.n})")
    out = Path(params.path(args.output))
    parent = out.parent
    while not parent.exists() and parent != parent.parent:  # save_grid creates missing folders under an existing one
        parent = parent.parent
    if out.is_dir():
        raise ConfigError(f"-o {args.output}: is a directory; give a file path such as {out / 'grid.png'}")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"-o {args.output}: must end in .png (the grid is saved as PNG)")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"-o {args.output}: cannot write there ({parent} is not a writable directory)")
    if args.command == "translate" and args.images:
        args.array = load_images(params, args.images)[: args.n]


def load_images(params, path: str):
    """--images as float32 (N, C, H, W) in [0, 1]: uint8 in [0, 255] or floats in [0, 1], finite, N >= 1, and C,
    H, W those of the prepared data when it is there (the model checks them again)."""
    import numpy as np

    from components.errors import DataError

    try:
        x = np.load(params.path(path), allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"--images {path}: not a readable .npy array ({err})") from None
    if x.ndim != 4 or x.shape[0] < 1:
        raise DataError(f"--images {path}: need an array (N, C, H, W) with N >= 1, got shape {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"--images {path}: holds NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"--images {path}: floats must lie in [0, 1] (got {x.min():.3g} to {x.max():.3g}); "
                            "pass uint8 for 0-255 pixels")
        x = x.astype(np.float32)
    else:
        raise DataError(f"--images {path}: dtype {x.dtype}; allowed: uint8 (0-255) or float in [0, 1]")
    manifest = params.path(params.data.out_dir) / "dataset.json"
    if manifest.is_file():
        from components.data import load_spec

        spec = load_spec(manifest.parent, verify=False)
        if tuple(x.shape[1:]) != spec.shape:
            raise DataError(f"--images {path}: images of shape {tuple(x.shape[1:])}, but the models are trained on "
                            f"(C, H, W) = {spec.shape} ({spec.name})")
    return x


def _translate(params, tracker, args) -> None:
    from components.errors import ConfigError
    from components.evaluation.figures import save_grid
    from components.tracking.registry import translate_by_alias

    if args.direction not in ("a2b", "b2a"):
        raise ConfigError(f"--direction: {args.direction!r}; allowed: a2b, b2a")
    if args.images:
        x = args.array
    else:
        import torch

        from components.data import load_spec, read_split, to_float
        from components.tracking.registry import _load

        inner = _load(tracker, args.model, args.alias, "translate").unwrap_python_model().model
        if not inner.capabilities.translation:
            raise ConfigError(f"--model: {args.model} does not translate")
        data_dir = params.path(params.data.out_dir)
        images, labels = read_split(data_dir, load_spec(data_dir), "test")
        source = "a" if args.direction == "a2b" else "b"
        x = inner.domains(to_float(images), torch.from_numpy(labels).long())[source][0][: args.n].numpy()
    out, back = translate_by_alias(tracker, args.model, args.alias, x, args.direction)
    import torch

    save_grid(torch.cat([torch.from_numpy(x), out, back]), params.path(args.output), nrow=len(x))
    print(f"translated {len(x)} images {args.direction} with genzoo-{args.model}@{args.alias} -> {args.output} "
          "(rows: source, translation, cycle back)")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    params = _stage.load(argparse.Namespace(params=args.params, model=None))
    check_args(params, args)
    from components.tracking import Tracker, tracking_uri

    tracker = Tracker(tracking_uri(params.mlflow.tracking_uri, params.root), params.mlflow.experiment, root=params.root)
    if args.command == "promote" and args.rollback:
        from components.tracking.registry import rollback

        print(json.dumps(rollback(tracker, args.model)))
    elif args.command == "promote":
        from pipelines.promote import promote_model

        print(json.dumps(promote_model(params, args.model), indent=2))
    elif args.command == "translate":
        _translate(params, tracker, args)
    else:
        from components.evaluation.figures import save_grid
        from components.tracking.registry import load_by_alias

        images = load_by_alias(tracker, args.model, args.alias, args.n, args.seed, label=args.label)
        save_grid(images, params.path(args.output), nrow=max(1, int(args.n**0.5)))
        of = f" of class {args.label}" if args.label is not None else ""
        print(f"sampled {args.n} images{of} from genzoo-{args.model}@{args.alias} -> {args.output}")


def entrypoint() -> None:
    _stage.run(lambda: main(sys.argv[1:]), stage=False)


if __name__ == "__main__":
    entrypoint()
