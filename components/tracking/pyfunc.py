"""The MLflow pyfunc flavour of a GenZoo model: loads the exported state_dict, rebuilds the torch module
through the registry, and samples. `predict({"n": [64], "seed": [0]})` returns images (n, C, H, W) in
[0, 1]; a conditional model also takes `"label": [k]` (all n images of class k; without it classes are
drawn uniformly). A translation model instead takes `{"images": (n, C, H, W) in [0, 1], "direction": ["a2b"]}`
and returns the translated images. `unwrap_python_model().model` is the torch module itself (for
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
            direction = str(np.asarray(data.get("direction", ["a2b"])).ravel()[0])
            with torch.no_grad():
                return self.model.translate(images, direction).cpu().numpy()
        n = int(np.asarray(data.get("n", [16])).ravel()[0])
        seed = int(np.asarray(data.get("seed", [0])).ravel()[0])
        label = data.get("label")
        labels = None if label is None else torch.full((n,), int(np.asarray(label).ravel()[0]), dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        return self.model.sample(n, labels=labels, generator=gen).cpu().numpy()
