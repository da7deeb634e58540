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
    sa.add_argument("-n", type=int, default=64, help="number of images (default 64)")
    sa.add_argument("-o", "--output", default="samples.png")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--label", help="conditional models: class name or index to draw (default: classes at random)")
    tr = sub.add_parser("translate", help="translate images with a registered translation model by alias; saves rows of "
                                          "sources, translations and the cycle back")
    tr.add_argument("--model", required=True)
    tr.add_argument("--alias", default="champion")
    tr.add_argument("--direction", default="a2b", help="a2b (default) or b2a")
    tr.add_argument("-n", type=int, default=8, help="images (default 8): the first n of the source domain")
    tr.add_argument("--images", help=".npy of images (N, C, H, W), uint8 or floats in [0, 1] (default: the "
                                     "prepared test split's source-domain images)")
    tr.add_argument("-o", "--output", default="translations.png")
    return p


def _translate(params, tracker, args) -> None:
    import numpy as np

    from components.errors import ConfigError, DataError
    from components.evaluation.figures import save_grid
    from components.tracking.registry import translate_by_alias

    if args.n < 1:
        raise ConfigError(f"-n: must be >= 1 (got {args.n})")
    if args.direction not in ("a2b", "b2a"):
        raise ConfigError(f"--direction: {args.direction!r}; allowed: a2b, b2a")
    if args.images:
        try:
            x = np.load(params.path(args.images), allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(f"--images {args.images}: not a readable .npy array ({err})") from None
        if x.ndim != 4:
            raise DataError(f"--images {args.images}: need an array (N, C, H, W), got shape {x.shape}")
        x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
        x = x[: args.n]
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
        from components.errors import ConfigError

        if args.n < 1:
            raise ConfigError(f"-n: must be >= 1 (got {args.n})")
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
