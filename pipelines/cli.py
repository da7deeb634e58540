"""`genzoo`: the registry commands (promote, rollback, sample by alias); stages run through dvc.yaml."""

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
    return p


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
