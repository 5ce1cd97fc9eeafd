"""How each library fits under one rule, and how every fit is measured (experiments/vi_models.py).

`reparam_fitter` wraps `reparam.vi.fit`. `numpyro_fitter` runs NumPyro SVI in the schedule
`vi.fit` uses: `svi.run` always runs its whole budget and returns the last iterate, so here the
same `svi.update` steps run in a `lax.while_loop` over windows, each a `lax.scan` of `window`
steps; after each window the same convergence test (window mean of the ELBO = −loss,
|Δ| / max(|mean|, 1) < rtol for `patience` windows in a row; the first window compares against
NaN and never counts) and the same returned q (the mean of the optimizer's unconstrained
parameters over the last window). `stop` is a traced argument, as in `vi.fit`: one compilation
serves the fit to convergence and the fit for the whole budget.

`measure` then does the same for every fit of either library: the first call (compiles), the
median of compiled calls to convergence and for the budget, and accuracy against NUTS.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments.models import Model
from reparam import vi


class Outcome(NamedTuple):
    """One fit, either library: its sampler, per-step ELBO and window means, steps run and where
    the convergence test fired."""

    sample: Callable[[jax.Array, int], dict]
    trace: np.ndarray
    smoothed: np.ndarray
    steps: int
    converged_step: int | None
    status: str
    setup_s: float | None = None  # NumPyro: the svi.init part of the call (tracing, init)


def reparam_fitter(model: Model, variant: Any, config: Any, optimizer, mesh) -> Callable:
    constraints = dict(model.constraints)
    if variant.dirichlet_weights:
        constraints["weights"] = vi.DirichletFactor()

    def fit(key: jax.Array, stop: bool) -> Outcome:
        r = vi.fit(
            key,
            model.log_joint,
            model.init_params,
            stop_at_convergence=stop,
            family=variant.family,
            constraints=constraints,
            optimizer=optimizer,
            num_steps=config.num_steps,
            num_samples=variant.num_samples,
            bound=variant.bound,
            gradient=variant.gradient,
            init_scale=config.init_scale,
            window=config.window,
            rtol=config.rtol,
            patience=config.patience,
            mesh=mesh,
        )
        return Outcome(
            r.posterior.sample, r.trace, r.smoothed, r.steps_run, r.converged_step, r.status
        )

    return fit


# ---------------------------------------------------------------- measurement (both libraries)
def summarize(quantities: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {
        k: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))}
        for k, v in quantities.items()
    }


def compare(summary: dict, reference: dict) -> dict[str, Any]:
    """Per quantity |mean − NUTS mean| / NUTS sd and sd / NUTS sd; the worst and the range."""
    z = {k: abs(summary[k]["mean"] - ref["mean"]) / ref["sd"] for k, ref in reference.items()}
    ratio = {k: summary[k]["sd"] / ref["sd"] for k, ref in reference.items()}
    worst = max(z, key=z.get)
    return {
        "max_mean_error_sd": z[worst],
        "worst_quantity": worst,
        "sd_ratio_min": min(ratio.values()),
        "sd_ratio_max": max(ratio.values()),
        "per_quantity": {k: {"mean_error_sd": z[k], "sd_ratio": ratio[k]} for k in reference},
        "summary": summary,
    }


def _timed(fit: Callable, key: jax.Array, stop: bool) -> tuple[Outcome, float]:
    start = time.perf_counter()
    out = fit(jax.random.clone(key), stop)  # outputs are host values: the fit has finished
    return out, time.perf_counter() - start


def measure(fit, label, model, config, reference, keys) -> tuple[dict, dict]:
    """The same measurements for every fit: the first call (compiles), the median of compiled
    calls to convergence and for the budget, and the accuracy of both fits against NUTS."""
    fit_key, draw_key = keys
    _, first_s = _timed(fit, fit_key, True)
    runs = {
        stop: [_timed(fit, fit_key, stop) for _ in range(config.timing_repeats)]
        for stop in (True, False)
    }
    converged, budget = runs[True][0][0], runs[False][0][0]
    quantities = {}
    for name, outcome, key in zip(
        ("at_convergence", "budget"), (converged, budget), jax.random.split(draw_key), strict=True
    ):
        draws = outcome.sample(key, config.posterior_draws)
        quantities[name] = model.quantities(jax.tree.map(np.asarray, draws))
    smoothed = np.asarray(budget.smoothed, np.float64)
    entry = {
        "label": label,
        "steps": converged.steps,
        "status": converged.status,
        "budget_converged_step": budget.converged_step,
        "first_call_s": first_s,
        "converge_s": statistics.median(t for _, t in runs[True]),
        "converge_setup_s": None
        if converged.setup_s is None
        else statistics.median(o.setup_s for o, _ in runs[True]),
        "budget_s": statistics.median(t for _, t in runs[False]),
        "at_convergence": compare(summarize(quantities["at_convergence"]), reference),
        "budget": compare(summarize(quantities["budget"]), reference),
        "smoothed": smoothed,
        "final_elbo": float(smoothed[-1]) if len(smoothed) else float("nan"),
    }
    return entry, quantities["budget"]


def run_nuts(model: Model, config: Any, key: jax.Array) -> tuple[dict, dict]:
    import numpyro.diagnostics as diagnostics  # optional heavy dependency: only the VI study
    from numpyro.infer import MCMC, NUTS

    chains, draws = config.nuts_chains, config.nuts_draws
    mcmc = MCMC(
        NUTS(model.numpyro_model, target_accept_prob=config.target_accept),
        num_warmup=config.nuts_warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    start = time.perf_counter()
    mcmc.run(key, extra_fields=("diverging",))
    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    wall = time.perf_counter() - start
    flat = {k: np.asarray(v).reshape(chains * draws, *v.shape[2:]) for k, v in samples.items()}
    quantities = model.quantities(flat)
    by_chain = {k: v.reshape(chains, draws) for k, v in quantities.items()}
    return {
        "summary": summarize(quantities),
        "max_r_hat": max(float(diagnostics.split_gelman_rubin(v)) for v in by_chain.values()),
        "min_ess": min(float(diagnostics.effective_sample_size(v)) for v in by_chain.values()),
        "divergences": int(np.sum(mcmc.get_extra_fields()["diverging"])),
        "wall_s": wall,
        "chains": chains,
        "draws": draws,
        "warmup": config.nuts_warmup,
    }, quantities


def histograms(model: Model, nuts: dict, fits: dict[str, dict], bins: int) -> dict:
    """Per plotted marginal: bin edges from NUTS's 0.5–99.5 % range and each density."""
    out = {}
    for name in model.marginals:
        lo, hi = np.percentile(nuts[name], [0.5, 99.5])
        edges = np.linspace(lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo), bins + 1)
        density = lambda v, e=edges: np.histogram(np.clip(v, e[0], e[-1]), e, density=True)[0]
        out[name] = {"edges": edges, "NUTS": density(nuts[name])}
        out[name].update({label: density(q[name]) for label, q in fits.items()})
    return out


def numpyro_fitter(model: Model, guide_name: str, config: Any, optimizer) -> Callable:
    """A fit function `(key, stop) -> Outcome` for NumPyro SVI with the autoguide `guide_name`
    on `model`, in `reparam.vi.fit`'s schedule (module docstring).

    `config` supplies num_steps (a multiple of window), window, rtol, patience and init_scale;
    `optimizer` is an optax transformation (the object `reparam.vi.fit` gets)."""
    from numpyro import infer  # optional heavy dependency: only the VI study imports this
    from numpyro.infer import autoguide, init_to_value
    from numpyro.optim import optax_to_numpyro

    init = init_to_value(values={k: jnp.asarray(v) for k, v in model.init_params.items()})
    guide = getattr(autoguide, guide_name)(
        model.numpyro_model, init_loc_fn=init, init_scale=config.init_scale
    )
    # As many ELBO draws per step as reparam.vi's peer variant (K = 1 unless --num-samples).
    elbo = infer.Trace_ELBO(num_particles=getattr(config, "num_samples", None) or 1)
    svi = infer.SVI(model.numpyro_model, guide, optax_to_numpyro(optimizer), elbo)
    window, num_windows = config.window, config.num_steps // config.window
    params_of = lambda state: svi.optim.get_params(state.optim_state)

    @jax.jit
    def loop(state, stop: jax.Array):
        nan = jnp.full((), jnp.nan)

        def step(carry, _):
            state, total, param_sum = carry
            state, loss = svi.update(state)
            param_sum = jax.tree.map(jnp.add, param_sum, params_of(state))
            return (state, total - loss, param_sum), -loss

        def window_body(outer):
            state, index, last, stable, converged, average, means, trace = outer
            zeros = jax.tree.map(jnp.zeros_like, params_of(state))
            (state, total, param_sum), values = jax.lax.scan(
                step, (state, jnp.zeros(()), zeros), None, length=window
            )
            mean = total / window
            change = jnp.abs(mean - last) / jnp.maximum(jnp.abs(mean), 1.0)
            stable = jnp.where(change < config.rtol, stable + 1, 0)
            now = (stable >= config.patience) & (converged < 0)
            converged = jnp.where(now, (index + 1) * window, converged)
            average = jax.tree.map(lambda x: x / window, param_sum)
            means, trace = means.at[index].set(mean), trace.at[index].set(values)
            return state, index + 1, mean, stable, converged, average, means, trace

        def keep_going(outer):
            return (outer[1] < num_windows) & ~(stop & (outer[4] >= 0))

        zero = jnp.zeros((), jnp.int32)
        buffers = jnp.full((num_windows,), nan), jnp.full((num_windows, window), nan)
        outer = (state, zero, nan, zero, zero - 1, params_of(state), *buffers)
        return jax.lax.while_loop(keep_going, window_body, outer)

    def fit(key: jax.Array, stop: bool) -> Outcome:
        start = time.perf_counter()
        state = jax.block_until_ready(svi.init(key))
        setup_s = time.perf_counter() - start
        _, windows, _, _, converged, average, means, trace = loop(state, jnp.asarray(stop))
        params = svi.constrain_fn(average)
        sample = lambda k, n: guide.sample_posterior(k, params, sample_shape=(n,))
        steps, converged = int(windows) * window, int(converged)
        status = "converged" if converged >= 0 else "max_steps"
        trace, means = np.asarray(trace).ravel()[:steps], np.asarray(means)[: int(windows)]
        converged = converged if converged >= 0 else None
        return Outcome(sample, trace, means, steps, converged, status, setup_s)

    return fit
