"""The code that defines a model's training, found from its imports: the family file's import closure within
`components/models` plus the training loop. Its hash is part of a training run's checkpoint key and of a
sweep's name, so a code change trains afresh instead of resuming a checkpoint made by other code.

Imports are read with `ast` (no module is imported); `from components.models import losses` counts the
submodule `losses.py`, while the package `__init__.py` (the registry, which imports every family) does not.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: components/ lives here
LOOP = ("components/training/loop.py",)  # the model-agnostic loop every family trains with
SLOTS = ("code1", "code2", "code3")  # pipeline.models.<m>: the model files dvc.yaml's tune/train deps name per model


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The source file of a module of the checkout at `root` (None for packages and anything else)."""
    f = root / (module.replace(".", "/") + ".py")
    return f if f.is_file() else None


def _imported(path: Path) -> tuple[str, ...]:
    """Every module an ``import`` or ``from ... import`` in `path` may name (function-level imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # submodules imported by name
    return tuple(sorted(names))


def import_closure(module: str, within: str = "components.models", root: Path = ROOT) -> list[Path]:
    """`module`'s file and the files of every module under `within` it reaches by imports, sorted."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        mod = todo.pop()
        f = module_file(mod, root)
        if mod in seen or f is None:
            continue
        seen[mod] = f
        todo.extend(m for m in _imported(f) if m == within or m.startswith(within + "."))
    return sorted(seen.values())


def model_code(name: str, root: Path = ROOT) -> list[str]:
    """Paths (relative to the checkout) of the code that defines model `name`'s training."""
    files = import_closure(f"components.models.{name}", root=root)
    if not files:
        raise KeyError(f"components/models/{name}.py: no such model family file")
    return sorted({str(f.relative_to(root)) for f in files} | set(LOOP))


def model_code_hash(name: str, root: Path = ROOT) -> str:
    """sha256 over the paths and contents of model_code(name): changes with any edit, comments included."""
    h = hashlib.sha256()
    for rel in model_code(name, root):
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return h.hexdigest()


def stage_code(name: str, root: Path = ROOT) -> dict[str, str]:
    """The components/models files (by stem) model `name`'s tune and train stages depend on besides its own file and
    base.py, one per slot of SLOTS, sorted; a slot left over names the family itself. dvc.yaml reads them from
    pipeline.models.<m> (DVC's foreach passes scalars per item, not lists), and config checks them against this."""
    own = {f"components/models/{name}.py", "components/models/base.py"}
    stems = sorted(Path(f).stem for f in model_code(name, root) if f.startswith("components/models/") and f not in own)
    if len(stems) > len(SLOTS):
        raise ValueError(f"components/models/{name}.py reaches {len(stems)} model files ({', '.join(stems)}); "
                         f"dvc.yaml has {len(SLOTS)} slots (components.code.SLOTS)")
    return dict(zip(SLOTS, stems + [name] * (len(SLOTS) - len(stems)), strict=True))
