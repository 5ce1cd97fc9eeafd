"""reparam: the reparameterization trick in JAX.

Every family is a module of pure, key-first functions (see DESIGN.md's family contract):
`noise(key, shape, dtype)`, `transform(eps, *params)`, `sample(key, *params, sample_shape=())`,
`log_prob(x, *params)` and, where closed forms exist, `entropy`, `mean`, `variance`.
Families without a parameter-free ε (gamma, beta, dirichlet, student_t, von_mises) have no
`noise`/`transform`; their `sample` carries implicit reparameterization gradients.

`reparam.nn` (Flax modules) is not imported here, so that the pure functions load without flax.
"""

from reparam import (
    beta,
    cauchy,
    checks,
    data,
    diagnostics,
    dirichlet,
    estimators,
    evaluate,
    exponential,
    gamma,
    gumbel,
    kl,
    kumaraswamy,
    laplace,
    logistic,
    lognormal,
    low_rank_normal,
    multivariate_normal,
    normal,
    normal_mixture,
    objectives,
    relaxed_bernoulli,
    relaxed_categorical,
    student_t,
    tanh_normal,
    uniform,
    von_mises,
    weibull,
)

FAMILIES = (
    "normal",
    "multivariate_normal",
    "low_rank_normal",
    "laplace",
    "logistic",
    "gumbel",
    "cauchy",
    "lognormal",
    "student_t",
    "exponential",
    "uniform",
    "weibull",
    "kumaraswamy",
    "beta",
    "gamma",
    "dirichlet",
    "von_mises",
    "relaxed_categorical",
    "relaxed_bernoulli",
    "tanh_normal",
    "normal_mixture",
)

__all__ = [
    "FAMILIES",
    "beta",
    "cauchy",
    "checks",
    "data",
    "diagnostics",
    "dirichlet",
    "estimators",
    "evaluate",
    "exponential",
    "gamma",
    "gumbel",
    "kl",
    "kumaraswamy",
    "laplace",
    "logistic",
    "lognormal",
    "low_rank_normal",
    "multivariate_normal",
    "normal",
    "normal_mixture",
    "objectives",
    "relaxed_bernoulli",
    "relaxed_categorical",
    "student_t",
    "tanh_normal",
    "uniform",
    "von_mises",
    "weibull",
]
__version__ = "0.1.0"
