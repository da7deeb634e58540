"""PixelCNN: an autoregressive model with an exact likelihood, p(x) = prod_i p(x_i | x_<i) in raster order.

`arch: gated` (default) is the gated PixelCNN of van den Oord et al. 2016, "Conditional Image Generation
with PixelCNN Decoders" (section 2.1-2.2): a vertical stack (a k//2+1 x k conv that sees the rows above)
and a horizontal stack (a 1 x k//2+1 conv that sees the pixels to the left in the current row) fed by the
vertical one through a 1x1 conv, gated activations tanh(W_f * x) * sigmoid(W_g * x), residual connections
in the horizontal stack; the first layer excludes the current pixel (mask A), so the receptive field has
no blind spot. `arch: masked` is the original PixelCNN of van den Oord et al. 2016, "Pixel Recurrent Neural
Networks" (section 3.5): a 7x7 conv with mask A, then 3x3 convs with mask B and ReLU, whose receptive
field misses the pixels up and to the right (the blind spot; tests/models/test_pixelcnn.py shows both).

Output per pixel and channel: one Bernoulli logit for binary data (dSprites, binarized MNIST), else a
256-way softmax over 8-bit values; channels are conditionally independent given the previous pixels
(a valid, if less expressive, factorization than PixelRNN's R -> G -> B). The NLL is exact and discrete,
in nats per image; bits/dim = NLL / (D ln 2). Sampling runs the network once per pixel (H x W passes, each on
the pixel's receptive window): 2,000 images for evaluation take about 3 minutes on 2 CPU cores, the price of
the same N as every other family (a per-epoch sample curve would cost more than an epoch, so its quality
curve is the validation NLL). The network lives in
`components.models.common.PixelCNNBase`, shared with the class-conditional `cpixelcnn`.
"""

from __future__ import annotations

from components.models.base import Capabilities, Family
from components.models.common import PixelCNNBase, PixelCNNConfig


class PixelCNN(PixelCNNBase):
    capabilities = Capabilities(likelihood="exact")


FAMILY = Family(PixelCNNConfig, PixelCNN, "PixelCNN: gated (no blind spot) or masked, exact likelihood (van den Oord et al. 2016)",
                curve_samples=False, tiny={"channels": 4, "layers": 2})
