"""reparam: the reparameterization trick in JAX.

Every family is a module of pure, key-first functions (see DESIGN.md's family contract):
`noise(key, shape, dtype)`, `transform(eps, *params)`, `sample(key, *params, sample_shape=())`,
`log_prob(x, *params)` and, where closed forms exist, `entropy`, `mean`, `variance`.
"""

from reparam import checks, normal

__all__ = ["checks", "normal"]
__version__ = "0.1.0"
