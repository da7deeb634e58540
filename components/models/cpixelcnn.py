"""Class-conditional PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders",
section 2.3): p(x | y) = prod_i p(x_i | x_<i, y), the label entering every gated layer as a learned bias of
both stacks' gates, tanh(W_f * x + V_f^T h) . sigmoid(W_g * x + V_g^T h) with h the one-hot class (the same
at every position, so causality is untouched). The likelihood is exact and conditional, reported as
`test_nll_given_y_nats` with the test images' true labels; samples are drawn for the requested classes.
Same network, options and sample budget as `pixelcnn` (`PixelCNNBase`, components/models/pixelcnn.py).

Not in the default run (`Family.default_run`): one more pixel-by-pixel sampler would take the CPU main job
past its 25-minute budget. Add `cpixelcnn: {data: datasets/prepared, code1: layers, code2: pixelcnn, code3: cpixelcnn}`
under `pipeline.models` in params.yaml to train it.
"""

from __future__ import annotations

from components.models.base import Capabilities, Family
from components.models.pixelcnn import PixelCNNBase, PixelCNNConfig


class CPixelCNNConfig(PixelCNNConfig):
    pass


class CPixelCNN(PixelCNNBase):
    conditional = True
    capabilities = Capabilities(labels=True, likelihood="exact", likelihood_given_labels=True)


FAMILY = Family(CPixelCNNConfig, CPixelCNN, "Class-conditional gated PixelCNN, exact p(x | y) (van den Oord et al. 2016)",
                curve_samples=False, tiny={"channels": 4, "layers": 2},
                default_run=False)
