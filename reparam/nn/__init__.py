"""Flax (linen) modules over the core's pure functions.

Modules hold no RNG state: every random draw takes a key passed in by the caller and goes through
the core (`reparam.normal`, `reparam.estimators`), so a model is a pure function of
(params, key, x). See `reparam.nn.vae` for the encoders, decoders, `VAE` and `IWAE`.
"""

from __future__ import annotations

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
    "VAE",
    "BernoulliConvDecoder",
    "BernoulliMLPDecoder",
    "GaussianConvEncoder",
    "GaussianMLPEncoder",
]
