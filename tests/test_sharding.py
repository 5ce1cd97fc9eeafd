"""Data parallelism (reparam.distributed + reparam.train with a mesh) on 4 fake CPU devices.

XLA_FLAGS=--xla_force_host_platform_device_count=4 only takes effect before jax is imported, and
the test process has imported it long ago: the runs happen in one child process (jax's start-up
paid once), which trains the quick VAE on a mesh of 1 device, of 4, and of 4 with sharded
parameters, then the training loops of the other experiments (BNN, SAC / REINFORCE, black-box
VI) on tiny configs on 1 and on 4 devices, and prints what the test checks as one JSON line.
The two halves are two child processes (two xdist groups), so that under `pytest -n 2` the two
workers run them side by side instead of one worker running both in a row.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import vae_commands, vae_mnist
from reparam.train import distributed
from tests import child

# The tests of each child run share one xdist group: one worker runs them, so the module-scoped
# fixture (the child's training runs) runs once under `pytest -n 2 --dist loadgroup`.
VAE_GROUP = pytest.mark.xdist_group("sharding-vae")
EXPERIMENTS_GROUP = pytest.mark.xdist_group("sharding-experiments")

ROOT = Path(__file__).resolve().parent.parent

VAE_CHILD = r"""
import json, sys
from pathlib import Path
import jax, numpy as np
from experiments import vae_mnist
from reparam import train

out, workdir = {"device_count": jax.device_count()}, Path(sys.argv[1])
for name, devices, shard in [("one", 1, False), ("four", 4, False), ("four_sharded", 4, True)]:
    config = vae_mnist.Config.quick(hidden=(32,), latent=4, batch_size=48, mesh="data",
                                    devices=devices, shard_params=shard)
    run = vae_mnist.setup(config)
    result = train.fit(key=run.key, state=run.state, train_epoch=run.train_epoch,
                       data=run.dataset.train, num_epochs=2,
                       workdir=workdir / name, checkpoint_every=2, progress=False,
                       mesh=run.mesh, shard_params=config.shard_params)
    leaves = jax.tree.leaves(result.state.params)
    hlo = run.train_epoch.lower(result.state, train.place_data(run.dataset.train, run.mesh),
                                run.key, 4).compile().as_text()
    out[name] = {
        "losses": [r["loss"] for r in result.history],
        "bounds": [r["bound"] for r in result.history],
        "mesh": run.mesh.size,
        "devices_per_leaf": sorted({len(leaf.sharding.device_set) for leaf in leaves}),
        "specs": sorted({str(leaf.sharding.spec) for leaf in leaves}),
        "params": [np.asarray(leaf).tolist() for leaf in leaves],
        "all_reduce": "all-reduce" in hlo,
        "all_gather": "all-gather" in hlo,
    }

print("RESULT " + json.dumps(out))
"""

EXPERIMENTS_CHILD = r"""
import dataclasses, json
import jax, numpy as np
import optax
from experiments import bnn, sac_pendulum, vi_models
from experiments.models import all_models, fitting
from reparam.train import distributed

out = {"device_count": jax.device_count()}

# Where the experiments split arrays: every `distributed.shard_batch` records the sharding XLA's
# partitioner gave its output (reported while compiling) as (devices, fully replicated).
seen, current = {}, [None]
shard_batch = distributed.shard_batch

def recording_shard_batch(tree, mesh, axis=0):
    tree = shard_batch(tree, mesh, axis)
    if mesh is not None:
        name = current[0]
        record = lambda s: seen.setdefault(name, set()).add(
            (len(s.device_set), bool(s.is_fully_replicated)))
        for leaf in jax.tree.leaves(tree):
            jax.debug.inspect_array_sharding(leaf, callback=record)
    return tree

distributed.shard_batch = recording_shard_batch
bnn_tiny = dataclasses.replace(bnn.Config.quick(), digits_hidden=(16,), digits_epochs=2,
                               digits_batch=64)
sac_tiny = dataclasses.replace(sac_pendulum.Config.quick(), total_steps=200, chunk_steps=200,
                               learning_starts=170, batch_size=16, hidden=(16,), eval_episodes=0)
vi_tiny = dataclasses.replace(vi_models.Config.quick(), num_steps=40, window=20)
variant = vi_models.Variant("mean_field", "stl", num_samples=4, dirichlet_weights=True)
for devices in (1, 4):
    mesh = distributed.make_mesh(devices)
    current[0] = f"bnn{devices}"
    # (The regression's full batch goes through the same `shard_batch`: not run here, to save
    # two compilations per mesh.)
    digits = bnn.run_digits(jax.random.key(0), bnn_tiny, mesh, predict=False)["curves"]
    current[0] = f"sac{devices}"
    sac = sac_pendulum.run_sac(jax.random.key(0), sac_tiny, mesh, trace=True)["trace"]
    # (REINFORCE's environments go through the same `shard_batch`: not run here, to save its
    # compilations.)
    current[0] = f"vi{devices}"
    fit = fitting.reparam_fitter(all_models()["gaussian_mixture"], variant, vi_tiny,
                                 optax.adam(1e-2), mesh)(jax.random.key(0), False)
    updates = slice(sac_tiny.learning_starts, None)
    out[f"experiments{devices}"] = {
        "bnn": [digits[k] for k in ("bayes_loss", "bayes_kl", "det_loss")],
        "sac": [sac["critic_loss"][updates].tolist(), sac["actor_loss"][updates].tolist()],
        "vi": [np.asarray(fit.trace).tolist()],
    }
out["seen"] = {name: sorted(kinds) for name, kinds in seen.items()}
print("RESULT " + json.dumps(out))
"""


def _run_child(tmp_path: Path, code: str, devices: int = 4, timeout: float = 240) -> dict:
    env = child.env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"child failed (rc={proc.returncode})\n--- stdout\n{proc.stdout[-3000:]}\n"
        f"--- stderr\n{proc.stderr[-5000:]}"
    )
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The quick VAE on meshes of 1, 4 and 4 devices with sharded parameters."""
    return _run_child(tmp_path_factory.mktemp("sharding"), VAE_CHILD)


@pytest.fixture(scope="module")
def experiment_runs(tmp_path_factory) -> dict:
    """The BNN, SAC and VI training loops on meshes of 1 and 4 devices."""
    result = _run_child(tmp_path_factory.mktemp("sharding_experiments"), EXPERIMENTS_CHILD)
    assert result["device_count"] == 4
    return result


@VAE_GROUP
def test_one_and_four_devices_give_the_same_losses(runs):
    assert runs["device_count"] == 4
    one, four = runs["one"], runs["four"]
    assert (one["mesh"], four["mesh"]) == (1, 4)
    # Same batches, same noise (threefry is partitionable): only the order of the float32 sums
    # over the batch differs, ~1e-7 relative per step, grown a little over 3 epochs of Adam.
    np.testing.assert_allclose(four["losses"], one["losses"], rtol=2e-5)
    np.testing.assert_allclose(four["bounds"], one["bounds"], rtol=2e-5)
    for a, b in zip(one["params"], four["params"], strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-3, atol=1e-4)
    assert one["losses"][-1] < one["losses"][0]  # it trains


@VAE_GROUP
def test_four_devices_really_split_the_batch(runs):
    four = runs["four"]
    # Parameters replicated on all 4 devices; the gradients are summed across them by XLA.
    assert four["devices_per_leaf"] == [4] and four["specs"] == ["P()"]
    assert four["all_reduce"] and not runs["one"]["all_reduce"]


@VAE_GROUP
def test_sharded_parameters_give_the_same_losses(runs):
    sharded = runs["four_sharded"]
    assert any("'data'" in spec for spec in sharded["specs"]), sharded["specs"]
    assert sharded["all_gather"]  # sharded parameters are gathered for the matmuls
    np.testing.assert_allclose(sharded["losses"], runs["one"]["losses"], rtol=2e-5)


@EXPERIMENTS_GROUP
@pytest.mark.parametrize("experiment", ["bnn", "sac", "vi"])
def test_experiments_give_the_same_losses_on_one_and_four_devices(experiment_runs, experiment):
    one, four = (
        experiment_runs["experiments1"][experiment],
        experiment_runs["experiments4"][experiment],
    )
    for a, b in zip(one, four, strict=True):
        assert len(a) == len(b) > 1
        # Same data, same noise; only float32 sums across devices reorder (SAC's actor loss
        # is a difference of two similar terms, hence the absolute tolerance).
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
        assert np.all(np.isfinite(a))


@EXPERIMENTS_GROUP
@pytest.mark.parametrize("experiment", ["bnn", "sac", "vi"])
def test_experiments_really_split_their_batches(experiment_runs, experiment):
    # On 4 devices every array the experiment shards (BNN: the digits minibatches;
    # SAC: the replay minibatches; VI: the K draws) is split over all
    # four, as compiled; the same code on a 1-device mesh keeps them whole.
    assert experiment_runs["seen"][f"{experiment}4"] == [[4, False]]
    assert experiment_runs["seen"][f"{experiment}1"] == [[1, True]]


def test_experiment_flags_choose_the_mesh():
    from experiments import bnn, runner, sac_pendulum, vi_models

    for module in (bnn, sac_pendulum):  # through experiments/runner.py
        parse = lambda flags, m=module: runner.cli(m.Config, m.Config.quick, flags)[0]
        assert (parse([]).mesh, parse([]).devices) == ("none", None)
        assert (parse(["--mesh", "data", "--devices", "4"]).devices) == 4
        assert parse(["--mesh", "data"]).mesh == "data"
    # vi_models goes through experiments/runner.py: --mesh and --devices are plain fields.
    vi_parse = lambda flags: vi_models.runner.cli(vi_models.Config, vi_models.Config.quick, flags)[
        0
    ]
    assert (vi_parse([]).mesh, vi_parse([]).devices) == ("none", None)
    assert (vi_parse(["--mesh", "data", "--devices", "4"]).devices) == 4
    vi_config = vi_parse(["--quick", "--num-samples", "4"])
    assert {
        vi_models.Variant.parse(v, vi_config.num_samples).num_samples for v in vi_config.variants
    } == {4}
    with pytest.raises(ValueError, match="`mesh` must be one of"):
        bnn.Config(mesh="model")


def test_unsplittable_sizes_are_clear_errors():
    mesh = type("FakeMesh", (), {"shape": {"data": 4}})()
    with pytest.raises(ValueError, match="`num_samples` 6 must be a multiple of the 4 devices"):
        distributed.check_divisible("reparam.vi.fit", "num_samples", 6, mesh)
    distributed.check_divisible("reparam.vi.fit", "num_samples", 8, mesh)
    distributed.check_divisible("reparam.vi.fit", "num_samples", 6, None)
    with pytest.raises(ValueError, match="`devices`=4 needs `mesh`='data'"):
        distributed.mesh_from_flags("none", 4, "experiments.bnn")
    assert distributed.mesh_from_flags("none", None, "experiments.bnn") is None


def test_command_line_flags_choose_the_mesh():
    # The flags end to end (flags -> config -> mesh -> fit) run in tests/test_multiprocess.py.
    def config(top: list[str], flags: list[str]) -> vae_mnist.Config:
        argv = [*top, "train", "--workdir", "w", *flags]
        return vae_commands.parse(vae_mnist.EXPERIMENT, argv)[1].config

    assert config([], []).mesh == "none"
    four = config([], ["--devices", "4"])
    assert (four.mesh, four.devices, four.shard_params) == ("data", 4, False)
    sharded = config([], ["--shard-params"])
    assert (sharded.mesh, sharded.devices, sharded.shard_params) == ("data", None, True)
    launch = ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"]
    assert config(launch, []).mesh == "data"
    with pytest.raises(ValueError, match="trains on --mesh data"):
        config(launch, ["--mesh", "none"])


# ---------------------------------------------------------------- in-process unit tests
def test_param_spec_shards_the_largest_divisible_axis():
    P = jax.sharding.PartitionSpec
    assert distributed.param_spec((64, 32), 4) == P("data", None)
    assert distributed.param_spec((6, 32), 4) == P(None, "data")
    assert distributed.param_spec((3,), 4) == P()
    assert distributed.param_spec((), 4) == P()
    assert distributed.param_spec((64, 32), 1) == P()


def test_bad_mesh_and_launch_arguments_are_clear():
    with pytest.raises(ValueError, match=r"`num_devices` must be in 1\.\.1"):
        distributed.make_mesh(2, devices=jax.devices()[:1])
    with pytest.raises(ValueError, match="need `coordinator`"):
        distributed.initialize(None, num_processes=2)
    with pytest.raises(ValueError, match="host:port"):
        distributed.initialize("localhost", 2, 0)
    with pytest.raises(ValueError, match="0 <= process_id < num_processes"):
        distributed.initialize("127.0.0.1:1234", 2, 2)
    assert distributed.initialize() is False


def test_batch_size_must_divide_over_the_mesh():
    from reparam import train

    mesh = distributed.make_mesh(1)
    train.make_train_epoch(lambda p, b, k: (0.0, {}), None, 7, mesh=mesh)  # 7 % 1 == 0
    fake = type("FakeMesh", (), {"shape": {"data": 4}})()
    with pytest.raises(ValueError, match="multiple of the 4 devices"):
        train.make_train_epoch(lambda p, b, k: (0.0, {}), None, 6, mesh=fake)
