"""A VAE with categorical latents (Jang, Gu & Poole 2017): MLP encoder to logits, Bernoulli decoder.

Shapes: data x is (B, D) (flattened binary images); the encoder maps x to logits of shape
(B, L, C) — L independent categorical latents of C categories each (20 × 10 in Jang et al.);
a code z (one-hot, or relaxed on the simplex) has shape (..., B, L, C) and the decoder sees it
flattened to (..., B, L·C). The modules hold no RNG: sampling and the gradient estimators live
in `reparam.discrete_vae`, which takes the model's `encode` / `log_likelihood` as callables.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from reparam.models import objectives
from reparam.nn.activations import activation
from reparam.nn.vae import BernoulliMLPDecoder

Array = jax.Array


class CategoricalMLPEncoder(nn.Module):
    """MLP x (..., D) -> logits (..., latents, categories) of q(z|x) = Π_l Cat(softmax(logits_l)).

    Attributes:
      latents: L, the number of categorical variables (20 in Jang et al. 2017).
      categories: C, the categories of each (10 in Jang et al.).
      hidden: widths of the hidden layers ((512, 256) in Jang et al.'s code).
      activation: a name in `reparam.nn.activations.ACTIVATIONS` ("relu", slim's default, in
        their code).
    """

    latents: int = 20
    categories: int = 10
    hidden: Sequence[int] = (512, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        act = activation(self.activation, "reparam.nn.categorical_vae")
        h = x
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        logits = nn.Dense(self.latents * self.categories)(h)
        return logits.reshape((*logits.shape[:-1], self.latents, self.categories))


class CategoricalVAE(nn.Module):
    """The categorical VAE's networks: `encode`, `decode`, `log_likelihood`.

    `__call__(x, z)` runs both networks once (for `init`): returns (logits (B, L, C), Bernoulli
    logits (..., B, D) at the code z).

    Attributes:
      encoder: x (B, D) -> logits (B, L, C), e.g. CategoricalMLPEncoder.
      decoder: flattened codes (..., L·C) -> Bernoulli logits (..., D), e.g.
        reparam.nn.BernoulliMLPDecoder(784, (256, 512), "relu").
    """

    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: Array) -> Array:
        """Logits of q(z|x), (B, L, C)."""
        return self.encoder(x)

    def decode(self, z: Array) -> Array:
        """Bernoulli logits (..., D) of p(x|z) for codes z (..., L, C)."""
        return self.decoder(z.reshape((*z.shape[:-2], z.shape[-2] * z.shape[-1])))

    def log_likelihood(self, x: Array, z: Array) -> Array:
        """log p(x|z) for codes z (..., B, L, C) and x (B, D): shape (..., B)."""
        return objectives.bernoulli_log_likelihood(self.decode(z), x)

    def __call__(self, x: Array, z: Array) -> tuple[Array, Array]:
        return self.encode(x), self.decode(z)


def categorical_vae(
    data_dim: int,
    latents: int = 20,
    categories: int = 10,
    hidden: Sequence[int] = (512, 256),
    activation: str = "relu",
    output_bias: Sequence[float] | None = None,
) -> CategoricalVAE:
    """Jang et al.'s model: encoder D-512-256-(L·C), decoder (L·C)-256-512-D (mirror), ReLU.

    Args:
      data_dim: D (784 for MNIST).
      latents, categories: L and C.
      hidden: the encoder's hidden widths; the decoder uses them reversed.
      activation: the hidden layers' nonlinearity.
      output_bias: the decoder's initial output bias (e.g. the logit of the pixel means).
    """
    encoder = CategoricalMLPEncoder(latents, categories, tuple(hidden), activation)
    decoder = BernoulliMLPDecoder(data_dim, tuple(reversed(hidden)), activation, output_bias)
    return CategoricalVAE(encoder, decoder)


__all__ = [
    "CategoricalMLPEncoder",
    "CategoricalVAE",
    "categorical_vae",
]
