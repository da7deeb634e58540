"""What every stage script shares: arguments, params loading, `--dry-run`, one-line errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from components.config import Params, load_config
from components.errors import GenZooError


def parser(description: str, model: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    if model:
        p.add_argument("--model", required=True, help="model name, a key of models in params.yaml")
    return p


def load(args: argparse.Namespace) -> Params:
    models = [args.model] if getattr(args, "model", None) else None
    params = load_config(args.params, models=models)
    if models and args.model not in params.pipeline.models:
        print(f"note: {args.model} is not in pipeline.models; training it anyway", file=sys.stderr)
    return params


def dry_run(args: argparse.Namespace, resolved: dict) -> bool:
    if args.dry_run:
        print(json.dumps(resolved, indent=2, default=str))
    return args.dry_run


def run(main: Callable[[], None]) -> None:
    """Call a stage's main(); bad input and known failures become one line on stderr and a non-zero exit."""
    try:
        main()
    except GenZooError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted; rerun to resume from the last checkpoint", file=sys.stderr)
        sys.exit(130)
