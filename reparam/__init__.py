"""reparam: the reparameterization trick in JAX.

The folders are the architecture (docs/DESIGN.md):

    reparam.families    one module per distribution family, one contract; `kl` beside them
    reparam.estimators  gradient estimators (pathwise, score function, measure-valued,
                        IWAE/STL/DReG, Gumbel-softmax, REBAR, RELAX) and their diagnostics
    reparam.models      model objectives: VAE/IWAE bounds, the categorical VAE, BNN losses
    reparam.nn          Flax modules: encoders, decoders, Bayesian layers, policies
    reparam.train       train step, scanned epochs, the loop, checkpoints, data, evaluation, devices
    reparam.vi          black-box variational inference and constraint bijectors
    reparam.rl          SAC and REINFORCE pieces
    reparam.checks      argument validation shared by all of the above

Short imports keep working: `from reparam import normal, gamma`, `reparam.normal.sample(...)`,
and the modules' earlier flat names (`reparam.data`, `reparam.kl`, `reparam.objectives`, ...),
which resolve to their new homes. `import reparam` loads the families and estimators only; the
rest (flax, orbax, file and network I/O) loads on first use.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from reparam import checks, estimators, families
from reparam.families import *  # noqa: F403  (the families, by their short names)
from reparam.families import FAMILIES

# Earlier flat module names -> where they live now. Both `reparam.data` (attribute) and
# `import reparam.data` / `from reparam.data import DataError` (submodule import) resolve here.
_MOVED = {
    **{
        f"reparam.{name}": f"reparam.families.{name}"
        for name in (*FAMILIES, "kl", "location_scale")
    },
    "reparam.diagnostics": "reparam.estimators.diagnostics",
    "reparam.objectives": "reparam.models.objectives",
    "reparam.discrete_vae": "reparam.models.discrete_vae",
    "reparam.bnn": "reparam.models.bnn",
    "reparam.data": "reparam.train.data",
    "reparam.evaluate": "reparam.models.evaluate",
    "reparam.distributed": "reparam.train.distributed",
    "reparam.bijectors": "reparam.vi.bijectors",
}
# Loaded on first attribute access, so that `import reparam` stays free of flax, orbax and I/O.
_LAZY = {
    "models": "reparam.models",
    "nn": "reparam.nn",
    "train": "reparam.train",
    "vi": "reparam.vi",
    "rl": "reparam.rl",
    **{old.removeprefix("reparam."): new for old, new in _MOVED.items()},
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an earlier flat module name to the module at its new path (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(_MOVED[spec.name])
        self._real_spec = module.__spec__  # the import system overwrites it with ours; put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self._real_spec  # already executed under its own name


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'reparam' has no attribute {name!r}")


__all__ = ["checks", "estimators", "families", *families.__all__]
__version__ = "0.1.0"
