"""Encoders, decoders, and the VAE / IWAE models (Kingma & Welling 2014; Burda et al. 2016).

Shapes: data x is (B, D) (flattened binary images), latents z are (..., B, d), an encoder maps
x to (loc, scale) of shape (B, d), a decoder maps z of shape (..., d) to Bernoulli logits of
shape (..., D). The models' `__call__(key, x)` returns `(surrogate, bound)`, both (B,): minimise
`-surrogate.mean()`; `bound` is the per-example ELBO / IWAE bound for logging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from reparam.models import objectives
from reparam.nn.activations import activation

Array = jax.Array

SCALE_FNS = ("exp", "softplus")


def _loc_scale(raw: Array, latent_dim: int, scale_fn: str) -> tuple[Array, Array]:
    """Split a (..., 2d) head into loc and a positive scale."""
    loc, raw_scale = raw[..., :latent_dim], raw[..., latent_dim:]
    if scale_fn == "exp":
        # The head is a log-variance (as in the IWAE paper): scale = exp(½ log σ²).
        return loc, jnp.exp(0.5 * raw_scale)
    if scale_fn == "softplus":
        # softplus(0) + 1e-4 ≈ 0.69: the floor keeps log q finite if the head saturates.
        return loc, jax.nn.softplus(raw_scale) + 1e-4
    raise ValueError(f"reparam.nn: `scale_fn` must be one of {SCALE_FNS}, got {scale_fn!r}")


class GaussianMLPEncoder(nn.Module):
    """MLP x (..., D) -> (loc, scale), each (..., latent_dim): a diagonal-normal q(z|x).

    Attributes:
      latent_dim: d.
      hidden: widths of the hidden layers ((200, 200) in the IWAE paper).
      activation: a name in `reparam.nn.activations.ACTIVATIONS` ("tanh" in the IWAE paper).
      scale_fn: "exp" (the head is a log-variance) or "softplus".
    """

    latent_dim: int
    hidden: Sequence[int] = (200, 200)
    activation: str = "tanh"
    scale_fn: str = "exp"

    @nn.compact
    def __call__(self, x: Array) -> tuple[Array, Array]:
        act = activation(self.activation, "reparam.nn.vae")
        h = x
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        # One Dense for both heads: one matmul instead of two in the hot loop.
        return _loc_scale(nn.Dense(2 * self.latent_dim)(h), self.latent_dim, self.scale_fn)


class BernoulliMLPDecoder(nn.Module):
    """MLP z (..., d) -> Bernoulli logits (..., output_dim).

    Attributes:
      output_dim: D (784 for MNIST).
      hidden: widths of the hidden layers, applied in order.
      activation: a name in `reparam.nn.activations.ACTIVATIONS`.
      output_bias: initial logits bias (e.g. the logit of the training data's mean, which
        starts training at the marginal likelihood of independent pixels); 0 by default.
    """

    output_dim: int
    hidden: Sequence[int] = (200, 200)
    activation: str = "tanh"
    output_bias: Sequence[float] | None = None

    @nn.compact
    def __call__(self, z: Array) -> Array:
        act = activation(self.activation, "reparam.nn.vae")
        h = z
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        bias_init = nn.initializers.zeros_init()
        if self.output_bias is not None:
            bias = jnp.asarray(self.output_bias)
            bias_init = lambda key, shape, dtype=jnp.float32: jnp.broadcast_to(bias, shape).astype(
                dtype
            )
        return nn.Dense(self.output_dim, bias_init=bias_init)(h)


def _flat_batch(x: Array, tail: int) -> tuple[Array, tuple[int, ...]]:
    """Merge all leading axes of x (shape (..., *tail_dims)) into one batch axis."""
    lead = x.shape[: x.ndim - tail]
    return x.reshape((math.prod(lead), *x.shape[x.ndim - tail :])), lead


class GaussianConvEncoder(nn.Module):
    """Conv encoder for flattened (..., H·W) images -> (loc, scale), each (..., latent_dim).

    Two stride-2 3x3 convolutions (H and W must be divisible by 4), then a Dense head.
    """

    latent_dim: int
    image_shape: tuple[int, int] = (28, 28)
    features: Sequence[int] = (32, 64)
    activation: str = "relu"
    scale_fn: str = "exp"

    @nn.compact
    def __call__(self, x: Array) -> tuple[Array, Array]:
        act = activation(self.activation, "reparam.nn.vae")
        flat, lead = _flat_batch(x, 1)
        h = flat.reshape((flat.shape[0], *self.image_shape, 1))
        for width in self.features:
            h = act(nn.Conv(width, (3, 3), strides=(2, 2))(h))
        h = h.reshape((h.shape[0], -1))
        loc, scale = _loc_scale(nn.Dense(2 * self.latent_dim)(h), self.latent_dim, self.scale_fn)
        return loc.reshape((*lead, -1)), scale.reshape((*lead, -1))


class BernoulliConvDecoder(nn.Module):
    """Transposed-conv decoder z (..., d) -> Bernoulli logits (..., H·W).

    A Dense layer to an (H/4, W/4, features[0]) map, then stride-2 transposed convolutions
    (features[1:], then 1 channel), mirroring GaussianConvEncoder.
    """

    image_shape: tuple[int, int] = (28, 28)
    features: Sequence[int] = (64, 32)
    activation: str = "relu"

    @nn.compact
    def __call__(self, z: Array) -> Array:
        act = activation(self.activation, "reparam.nn.vae")
        height, width = self.image_shape
        if height % 4 or width % 4:
            raise ValueError(
                f"reparam.nn.BernoulliConvDecoder: `image_shape` must be divisible by 4, got "
                f"{self.image_shape}"
            )
        flat, lead = _flat_batch(z, 1)
        h = act(nn.Dense(height // 4 * width // 4 * self.features[0])(flat))
        h = h.reshape((flat.shape[0], height // 4, width // 4, self.features[0]))
        h = act(nn.ConvTranspose(self.features[-1], (3, 3), strides=(2, 2))(h))
        h = nn.ConvTranspose(1, (3, 3), strides=(2, 2))(h)
        return h.reshape((*lead, height * width))


class VAE(nn.Module):
    """Variational autoencoder with a standard-normal prior and a Bernoulli likelihood.

    `__call__(key, x)` -> (surrogate, elbo), each (B,), from `reparam.objectives.elbo`.

    Attributes:
      encoder: x (B, D) -> (loc, scale) of shape (B, d).
      decoder: z (..., d) -> logits (..., D).
      kl: "analytic" (closed-form KL through reparam.kl) or "mc" (Monte-Carlo, one sample).
      beta: weight of the KL term (β-VAE); 1 is the ELBO.
      gradient: "standard", or "stl" / "dreg" (sticking the landing; needs kl="mc").
    """

    encoder: nn.Module
    decoder: nn.Module
    kl: str = "analytic"
    beta: float = 1.0
    gradient: str = "standard"

    def encode(self, x: Array) -> tuple[Array, Array]:
        """q(z|x) parameters (loc, scale), each (B, d)."""
        return self.encoder(x)

    def decode(self, z: Array) -> Array:
        """Bernoulli logits (..., D) of p(x|z)."""
        return self.decoder(z)

    def log_likelihood(self, x: Array, z: Array) -> Array:
        """log p(x|z) for z (..., B, d) and x (B, D): shape (..., B)."""
        return objectives.bernoulli_log_likelihood(self.decoder(z), x)

    def __call__(self, key: Array, x: Array) -> tuple[Array, Array]:
        return objectives.elbo(
            key,
            x,
            self.encode,
            lambda z: self.log_likelihood(x, z),
            kl=self.kl,
            beta=self.beta,
            gradient=self.gradient,
        )


class IWAE(VAE):
    """Importance-weighted autoencoder: the VAE's networks trained on the K-sample bound.

    `__call__(key, x)` -> (surrogate, bound), each (B,), from `reparam.objectives.iwae`, whose
    gradient is "standard", "stl" or "dreg" (through `reparam.estimators.iwae_surrogate`).
    """

    num_samples: int = 5

    def __call__(self, key: Array, x: Array) -> tuple[Array, Array]:
        return objectives.iwae(
            key,
            x,
            self.encode,
            lambda z: self.log_likelihood(x, z),
            self.num_samples,
            gradient=self.gradient,
        )


__all__ = [
    "IWAE",
    "SCALE_FNS",
    "VAE",
    "BernoulliConvDecoder",
    "BernoulliMLPDecoder",
    "GaussianConvEncoder",
    "GaussianMLPEncoder",
]
