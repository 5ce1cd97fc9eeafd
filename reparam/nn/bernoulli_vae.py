"""The Bernoulli-latent VAE's networks as in google-research/disarm (binary/networks.py,
`BinaryNetwork`; binary/experiment_launcher_singlelayer.py), and RELAX's learned residual.

Shapes: data x is (B, X) (flattened binary images); the encoder maps x to the logits (B, D) of
q(b|x) = Π_d Bernoulli(σ(logits_d)); a code b ((..., B, D), in {0, 1} or relaxed in [0, 1])
goes to the decoder's pixel logits (..., B, X). The modules hold no RNG: sampling and the
gradient estimators live in `reparam.models.bernoulli_vae`, which takes `encode` and
`log_likelihood` as callables.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from reparam.models import objectives
from reparam.nn.activations import activation as named_activation

Array = jax.Array


def _activation(name: str, slope: float):
    if name == "leaky_relu":
        return lambda h: jax.nn.leaky_relu(h, slope)
    return named_activation(name, "reparam.nn.bernoulli_vae")


class DenseStack(nn.Module):
    """Dense layers of `widths` with `activation` between them (none after the last), Keras'
    initializers (Glorot-uniform kernels, zero biases, as DisARM's TF code); the last layer's
    bias starts at `output_bias` if given.

    Attributes:
      widths: output widths, the last one the output's.
      activation: "leaky_relu" (negative slope `slope`) or a name in
        `reparam.nn.activations.ACTIVATIONS`.
      slope: LeakyReLU's negative slope (0.3, Keras' default, in DisARM's code).
      output_bias: (widths[-1],) initial biases of the last layer, or None for zeros.
    """

    widths: Sequence[int]
    activation: str = "leaky_relu"
    slope: float = 0.3
    output_bias: Sequence[float] | None = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        act, kernel = _activation(self.activation, self.slope), nn.initializers.glorot_uniform()
        for width in self.widths[:-1]:
            x = act(nn.Dense(width, kernel_init=kernel)(x))
        bias = self.output_bias
        bias_init = nn.initializers.zeros if bias is None else (
            lambda *_: jnp.asarray(bias, jnp.float32)
        )  # fmt: skip
        return nn.Dense(self.widths[-1], kernel_init=kernel, bias_init=bias_init)(x)


class BernoulliVAE(nn.Module):
    """Encoder x -> logits of q(b|x) and decoder b -> pixel logits of p(x|b).

    As DisARM's code run with --demean_input: the encoder sees x − `input_mean` (the training
    pixels' mean), the decoder 2b − 1; with `output_bias` (--initialize_with_bias) the decoder
    starts at the logits of the training pixels' means.

    Attributes:
      latents: D (200 in the benchmark).
      data_dim: X (784).
      hidden: the encoder's hidden widths, () for the "linear" model, (200, 200) for the
        "nonlinear" one; the decoder mirrors them.
      activation, slope: the hidden layers' nonlinearity (see `DenseStack`).
      input_mean: (X,) subtracted from the encoder's input, or None.
      output_bias: (X,) the decoder's initial output biases, or None.
    """

    latents: int
    data_dim: int
    hidden: Sequence[int] = (200, 200)
    activation: str = "leaky_relu"
    slope: float = 0.3
    input_mean: Sequence[float] | None = None
    output_bias: Sequence[float] | None = None

    def setup(self) -> None:
        act = dict(activation=self.activation, slope=self.slope)
        self.encoder = DenseStack((*self.hidden, self.latents), **act)
        decoder_widths = (*tuple(self.hidden)[::-1], self.data_dim)
        self.decoder = DenseStack(decoder_widths, output_bias=self.output_bias, **act)

    def encode(self, x: Array) -> Array:
        """Logits of q(b|x), (B, D)."""
        if self.input_mean is not None:
            x = x - jnp.asarray(self.input_mean, x.dtype)
        return self.encoder(x)

    def decode(self, b: Array) -> Array:
        """Pixel logits (..., X) of p(x|b) for codes b (..., D)."""
        return self.decoder(2 * b - 1)

    def log_likelihood(self, x: Array, b: Array) -> Array:
        """log p(x|b) for codes b (..., B, D) and x (B, X): shape (..., B)."""
        return objectives.bernoulli_log_likelihood(self.decode(b), x)

    def __call__(self, x: Array, b: Array) -> tuple[Array, Array]:
        return self.encode(x), self.decode(b)


class RelaxResidual(nn.Module):
    """RELAX's learned residual r_ψ(x, z): one hidden layer over the image and the continuous
    z, one value per code (DisARM's `control_nn`: 137 LeakyReLU units on concat(x, z)).

    __call__(x (B, X), z (K, B, D)) -> (K, B).
    """

    hidden: int = 137
    activation: str = "leaky_relu"
    slope: float = 0.3

    @nn.compact
    def __call__(self, x: Array, z: Array) -> Array:
        x = jnp.broadcast_to(x, (*z.shape[:-1], x.shape[-1])).astype(z.dtype)
        net = DenseStack((self.hidden, 1), self.activation, self.slope)
        return net(jnp.concatenate([x, z], axis=-1))[..., 0]


__all__ = ["BernoulliVAE", "DenseStack", "RelaxResidual"]
