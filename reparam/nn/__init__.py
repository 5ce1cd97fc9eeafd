"""Flax (linen) modules over the core's pure functions.

Modules hold no RNG state: every random draw takes a key passed in by the caller and goes through
the core (`reparam.normal`, `reparam.estimators`), so a model is a pure function of
(params, key, x). `reparam.nn.vae`: encoders, decoders, `VAE`, `IWAE`; `reparam.nn.bayesian`:
Bayesian layers (Bayes by Backprop, local reparameterization, Flipout); `reparam.nn.policy`:
tanh-Gaussian policy and critics for SAC; `reparam.nn.categorical_vae`: the categorical-latent VAE
of Jang et al. (2017) (its objectives are in `reparam.discrete_vae`); `reparam.nn.bernoulli_vae`:
the Bernoulli-latent VAE of the REBAR/RELAX/DisARM benchmark (its objectives are in
`reparam.models.bernoulli_vae`).
"""

from __future__ import annotations

from reparam.nn.bayesian import MLP, BayesianDense, BayesianMLP
from reparam.nn.bernoulli_vae import BernoulliVAE, DenseStack, RelaxResidual
from reparam.nn.categorical_vae import CategoricalMLPEncoder, CategoricalVAE, categorical_vae
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
    "BernoulliVAE",
    "CategoricalMLPEncoder",
    "CategoricalVAE",
    "DenseStack",
    "GaussianConvEncoder",
    "GaussianMLPEncoder",
    "RelaxResidual",
    "TanhGaussianPolicy",
    "TwinQ",
    "ValueNetwork",
    "categorical_vae",
]
