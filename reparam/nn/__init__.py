"""Flax (linen) modules over the core's pure functions.

Modules hold no RNG state: every random draw takes a key passed in by the caller and goes through
the core (`reparam.normal`, `reparam.estimators`), so a model is a pure function of
(params, key, x). `reparam.nn.vae`: encoders, decoders, `VAE`, `IWAE`; `reparam.nn.bayesian`:
Bayesian layers (Bayes by Backprop, local reparameterization, Flipout); `reparam.nn.policy`:
tanh-Gaussian policy and critics for SAC.
"""

from __future__ import annotations

from reparam.nn.bayesian import MLP, BayesianDense, BayesianMLP
from reparam.nn.policy import TanhGaussianPolicy, TwinQ, ValueNetwork
from reparam.nn.vae import (
    IWAE,
    VAE,
    BernoulliConvDecoder,
    BernoulliMLPDecoder,
    GaussianConvEncoder,
    GaussianMLPEncoder,
)

__all__ = [
    "IWAE",
    "MLP",
    "VAE",
    "BayesianDense",
    "BayesianMLP",
    "BernoulliConvDecoder",
    "BernoulliMLPDecoder",
    "GaussianConvEncoder",
    "GaussianMLPEncoder",
    "TanhGaussianPolicy",
    "TwinQ",
    "ValueNetwork",
]
