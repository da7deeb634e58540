"""The MLflow pyfunc flavour of a GenZoo model: loads the exported state_dict, rebuilds the torch module
through the registry, and samples. `predict({"n": [64], "seed": [0]})` returns images (n, C, H, W) in
[0, 1]; a conditional model also takes `"label": [k]` (all n images of class k; without it classes are
drawn uniformly). A translation model instead takes `{"images": (n, C, H, W) in [0, 1]}` with the inference
param `direction` ("a2b" or "b2a"; `{"direction": ["a2b"]}` in the input works too) and returns the translated
images. `signature` and `input_example` describe both forms for MLflow's logged model, so serving tools and
`mlflow models predict` can check input. `unwrap_python_model().model` is the torch module itself (for
interpolation, likelihoods)."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import torch


class GenZooSampler(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from components.models.io import load_exported

        self.family, self.model = load_exported(context.artifacts["model"])

    def predict(self, context, model_input, params=None) -> np.ndarray:
        data = model_input if isinstance(model_input, dict) else model_input.to_dict("list")
        if self.model.capabilities.translation:
            images = torch.as_tensor(np.asarray(data["images"], dtype=np.float32))
            direction = (params or {}).get("direction") or str(np.asarray(data.get("direction", ["a2b"])).ravel()[0])
            with torch.no_grad():
                return self.model.translate(images, direction).cpu().numpy()
        n = int(np.asarray(data.get("n", [16])).ravel()[0])
        seed = int(np.asarray(data.get("seed", [0])).ravel()[0])
        label = data.get("label")
        labels = None if label is None else torch.full((n,), int(np.asarray(label).ravel()[0]), dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        return self.model.sample(n, labels=labels, generator=gen).cpu().numpy()


def signature(model):
    """The MLflow signature of a GenZoo model's pyfunc: sampler inputs n, seed (and label for a conditional
    model) as columns, or a translator's image tensor with the `direction` param; images (n, C, H, W) out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    images = TensorSpec(np.dtype(np.float32), (-1, *model.spec.shape), "images")
    if model.capabilities.translation:
        return ModelSignature(inputs=Schema([images]), outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *model.spec.shape))]),
                              params=ParamSchema([ParamSpec("direction", "string", "a2b")]))
    cols = [ColSpec("long", "n"), ColSpec("long", "seed")]
    if model.capabilities.labels:
        cols.append(ColSpec("long", "label", required=False))
    return ModelSignature(inputs=Schema(cols), outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *model.spec.shape))]))


def input_example(model):
    """A small valid input: 4 samples of seed 0 (class 0 for a conditional model), or 2 blank images to translate."""
    import pandas as pd

    if model.capabilities.translation:
        return {"images": np.zeros((2, *model.spec.shape), dtype=np.float32)}
    example = {"n": [4], "seed": [0], **({"label": [0]} if model.capabilities.labels else {})}
    return pd.DataFrame(example)
