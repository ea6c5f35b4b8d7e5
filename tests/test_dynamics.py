"""run and sweep: recording, reproducibility, divergence, batching, no recompilation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory.errors import ConfigError


def balancedness(params):
    return st.measure.balancedness(params)


def population_loss(params, problem):
    return problem.evaluation_loss(params)


OBSERVE = {"B": st.observables.of_params(balancedness), "loss": st.observables.of_params_and_problem(population_loss)}


def index_problem(n=10):
    """A data set whose examples are their own indices, to see which examples a batch holds."""
    return st.problems.from_loss(index_loss, jnp.zeros(1), data={"index": jnp.arange(n)})


def index_loss(w, batch):
    return jnp.mean((w[0] - batch["index"].astype(w.dtype)) ** 2)


def test_records_at_stride_and_final_step():
    problem = st.problems.op_toy(noise=0.5)
    traj = st.run(problem, st.optim.sam(lr=1e-2, rho=0.1), steps=105, key=jax.random.key(0),
                  observe=OBSERVE, stride=10)
    np.testing.assert_array_equal(traj.steps, list(range(0, 101, 10)) + [105])
    assert traj.observed["B"].shape == (12,)
    assert traj.observed["B"][0] == pytest.approx(-0.56)
    # The final record is taken at the final parameters.
    assert traj.observed["B"][-1] == pytest.approx(float(st.measure.balancedness(traj.params)), abs=0)
    assert traj.status == "ok"
    assert float(traj.grad_evals) == 2 * 105


def test_same_key_same_run_and_other_key_other_run():
    problem = st.problems.nop_toy(noise=1.0)
    optimizer = st.optim.sgd(lr=1e-2)
    first = st.run(problem, optimizer, steps=50, key=jax.random.key(3), observe=OBSERVE)
    again = st.run(problem, optimizer, steps=50, key=jax.random.key(3), observe=OBSERVE)
    other = st.run(problem, optimizer, steps=50, key=jax.random.key(4), observe=OBSERVE)
    np.testing.assert_array_equal(first.observed["B"], again.observed["B"])
    assert not np.array_equal(first.observed["B"], other.observed["B"])


def test_vector_observables_keep_their_shape():
    problem = st.problems.lora(layers=4, noise=0.5)
    traj = st.run(problem, st.optim.sam(lr=1e-2, rho=0.1), steps=20, key=jax.random.key(0),
                  observe={"B": st.observables.of_params(balancedness)}, stride=5)
    assert traj.observed["B"].shape == (5, 4)


def diverging_loss(w, batch):
    return 10.0 * jnp.sum(w ** 2)


def test_divergence_is_marked_not_silently_nan():
    problem = st.problems.from_loss(diverging_loss, jnp.ones(3))
    traj = st.run(problem, st.optim.gd(lr=1.0), steps=2000, key=jax.random.key(0), stride=100)
    # |1 - 20 lr| = 19: the iterate grows 19x per step; its loss overflows float64 after about
    # log(1e308 / 30) / log(361) = 119 steps.
    assert traj.diverged and 110 < int(traj.diverged_at) < 130
    assert traj.status.startswith(f"diverged at step {int(traj.diverged_at)}")
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(traj.params))
    after = traj.steps > int(traj.diverged_at) + 100
    assert np.all(np.isnan(traj.observed["loss"][after]))
    assert np.all(np.isfinite(traj.observed["loss"][traj.steps < int(traj.diverged_at)]))


def test_sweep_marks_diverging_lanes_and_keeps_the_others():
    problem = st.problems.from_loss(diverging_loss, jnp.ones(3))
    result = st.sweep(problem, st.optim.gd(lr=0.01), steps=500, grid={"lr": [0.01, 1.0]})
    status = result["gd"].status
    assert status[0, 0] == "ok" and status[1, 0].startswith("diverged at step")


def test_sweep_equals_a_loop_of_runs():
    problem = st.problems.op_toy(noise=0.5)
    optimizers = {"sgd": st.optim.sgd(lr=1e-2), "sam": st.optim.sam(lr=1e-2, rho=0.1),
                  "nbar": st.optim.nbar(lr=1e-2, alpha=0.5)}
    grid = {"noise": [0.0, 0.5, 1.0], "rho": [0.05, 0.2]}
    result = st.sweep(problem, optimizers, steps=200, seeds=[0, 5], grid=grid, observe=OBSERVE,
                      stride=50)
    assert result.axes == ("noise", "rho", "seed") and result.shape == (3, 2, 2)
    for i, noise in enumerate(grid["noise"]):
        for j, rho in enumerate(grid["rho"]):
            for k, seed in enumerate([0, 5]):
                lane_problem = problem.with_constants(noise=noise)
                for name, optimizer in optimizers.items():
                    if "rho" in optimizer.hparams:
                        optimizer = optimizer.with_hparams(rho=rho)
                    single = st.run(lane_problem, optimizer, steps=200, key=jax.random.key(seed),
                                    observe=OBSERVE, stride=50)
                    np.testing.assert_allclose(result[name].observed["B"][i, j, k],
                                               single.observed["B"], rtol=1e-12, atol=1e-14)
                    np.testing.assert_allclose(result[name].params["x"][i, j, k],
                                               single.params["x"], rtol=1e-12, atol=1e-14)


def test_changing_hyperparameter_values_does_not_recompile(simulation_traces):
    problem = st.problems.nop_toy(noise=0.25)
    run_kwargs = dict(steps=30, key=jax.random.key(0), observe=OBSERVE, stride=10)
    st.run(problem, st.optim.sam(lr=1e-2, rho=0.1), **run_kwargs)
    before = simulation_traces()
    for lr, rho in [(2e-2, 0.3), (5e-3, 0.0), (1e-1, 1.0)]:
        st.run(problem, st.optim.sam(lr=lr, rho=rho), **run_kwargs)
    st.run(problem.with_constants(noise=2.0), st.optim.sam(lr=1e-2, rho=0.1), **run_kwargs)
    st.run(st.problems.nop_toy(noise=0.75), st.optim.sam(lr=1e-2, rho=0.1), **run_kwargs)
    assert simulation_traces() == before

    sweep_kwargs = dict(steps=30, seeds=2, observe=OBSERVE, stride=10)
    st.sweep(problem, st.optim.sam(lr=1e-2, rho=0.1), grid={"rho": [0.1, 0.2, 0.3]}, **sweep_kwargs)
    before = simulation_traces()
    st.sweep(problem, st.optim.sam(lr=3e-2, rho=0.5), grid={"rho": [0.4, 0.5, 0.9]}, **sweep_kwargs)
    assert simulation_traces() == before
    # A different optimizer *rule* is a different program: that one must trace.
    st.sweep(problem, st.optim.usam(lr=1e-2, rho=0.1), grid={"rho": [0.1, 0.2, 0.3]}, **sweep_kwargs)
    assert simulation_traces() > before


def test_optimizers_without_a_grid_parameter_are_broadcast():
    problem = st.problems.op_toy(noise=0.5)
    result = st.sweep(problem, [st.optim.sgd(lr=1e-2), st.optim.sam(lr=1e-2, rho=0.1)], steps=50,
                      seeds=2, grid={"rho": [0.1, 0.2, 0.4]}, observe=OBSERVE)
    sgd_b = result["sgd"].observed["B"]
    assert sgd_b.shape == result["sam"].observed["B"].shape
    np.testing.assert_array_equal(sgd_b[0], sgd_b[2])
    assert not np.array_equal(result["sam"].observed["B"][0], result["sam"].observed["B"][2])


def test_shuffled_epochs_visit_every_example_once_per_epoch():
    problem = index_problem(n=12)
    key = jax.random.key(7)
    for epoch in range(3):
        seen = np.concatenate([np.asarray(problem.batch(key, epoch * 4 + i, 3)["index"])
                               for i in range(4)])
        np.testing.assert_array_equal(np.sort(seen), np.arange(12))
    first_epoch = [np.asarray(problem.batch(key, i, 3)["index"]) for i in range(4)]
    second_epoch = [np.asarray(problem.batch(key, 4 + i, 3)["index"]) for i in range(4)]
    assert not all(np.array_equal(a, b) for a, b in zip(first_epoch, second_epoch))


def test_batches_with_replacement_and_full_batch():
    problem = index_problem(n=5)
    key = jax.random.key(0)
    draws = np.concatenate([np.asarray(problem.batch(key, s, 4, replace=True)["index"])
                            for s in range(50)])
    assert draws.shape == (200,) and set(draws) == set(range(5))
    np.testing.assert_array_equal(problem.batch(key, 3)["index"], np.arange(5))


def test_observables_may_take_the_problem():
    problem = st.problems.op_toy(noise=0.5)
    traj = st.run(problem, st.optim.gd(lr=1e-2), steps=10, key=jax.random.key(0),
                  observe={"loss": st.observables.of_params_and_problem(population_loss),
                           "x0": st.observables.of_params(lambda params: params["x"][0])})
    assert traj.observed["loss"].shape == traj.observed["x0"].shape == (11,)


@pytest.mark.parametrize("call, parameter", [
    (lambda p, o: st.run(p, o, steps=0, key=jax.random.key(0)), "steps=0"),
    (lambda p, o: st.run(p, o, steps=10, stride=0, key=jax.random.key(0)), "stride=0"),
    (lambda p, o: st.run(p, o, steps=10, key=0), "key=0"),
    (lambda p, o: st.run(p, o, steps=10, key=jax.random.key(0), params0={"x": jnp.zeros(2), "y": jnp.zeros(3)}), "params0"),
    (lambda p, o: st.run(p, o, steps=10, key=jax.random.key(0), observe={"B": 3}), "observe['B']"),
    (lambda p, o: st.sweep(p, o, steps=10, grid={"gamma": [1.0]}), "grid='gamma'"),
    (lambda p, o: st.sweep(p, o, steps=10, grid={"rho": [-1.0, 0.1]}), "rho"),
    (lambda p, o: st.sweep(p, o, steps=10, grid={"rho": []}), "grid['rho']"),
    (lambda p, o: st.sweep(p, o, steps=10, seeds=0), "seeds=0"),
    (lambda p, o: st.run("not a problem", o, steps=10, key=jax.random.key(0)), "problem"),
])
def test_bad_run_and_sweep_arguments(call, parameter):
    with pytest.raises(ConfigError) as error:
        call(st.problems.op_toy(), st.optim.sam(lr=1e-2, rho=0.1))
    assert parameter in str(error.value)


def test_problem_constructors_reject_bad_input():
    with pytest.raises(ConfigError, match="noise=-1"):
        st.problems.op_toy(noise=-1.0)
    with pytest.raises(ConfigError, match="y0"):
        st.problems.op_toy(x0=[1.0, 2.0], y0=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="layers=0"):
        st.problems.lora(layers=0)
    with pytest.raises(ConfigError, match="data"):
        st.problems.from_loss(index_loss, jnp.zeros(1), data={"a": jnp.zeros(3), "b": jnp.zeros(4)})
    with pytest.raises(ConfigError, match="params0"):
        st.problems.from_loss(index_loss, jnp.array([jnp.nan]))


def quadratic_loss(w, batch):
    return 0.5 * jnp.sum(jnp.array([3.0, 1.0]) * w ** 2)


def test_run_and_sweep_return_the_final_optimizer_state():
    problem = st.problems.from_loss(quadratic_loss, jnp.array([1.0, -1.0]))
    lr, beta = 0.1, 0.9
    traj = st.run(problem, st.optim.gd(lr=lr, base=st.optim.momentum(beta)), steps=7,
                  key=jax.random.key(0))
    w, velocity = np.array([1.0, -1.0]), np.zeros(2)
    for _ in range(7):
        velocity = np.array([3.0, 1.0]) * w + beta * velocity
        w = w - lr * velocity
    np.testing.assert_allclose(traj.state["base"].trace, velocity, rtol=1e-14)
    assert int(traj.state["count"]) == 7
    result = st.sweep(problem, st.optim.sam(lr=lr, rho=0.1, base=st.optim.momentum(beta)),
                      steps=7, seeds=3, grid={"rho": [0.0, 0.1]})
    trace = result["sam"].state["base"].trace
    assert trace.shape == (2, 3, 2)
    np.testing.assert_allclose(trace[0, 1], velocity, rtol=1e-13)


SHARDING_SCRIPT = r"""
import json
import jax
import numpy as np
import sharp_theory as st

problem = st.problems.diagonal_linear(8, 50, 6, 2, 0, init_scale=0.3)
optimizers = {"gd": st.optim.gd(0.2), "1-sam": st.optim.usam(0.2, 0.05, m=1),
              "sgd": st.optim.sgd(0.2, batch_size=2)}
kwargs = dict(steps=40, stride=20, seeds=[1, 4], grid={"rho": [0.0, 0.05, 0.1, 0.2]},
              observe={"loss": st.observables.of_params_and_problem(lambda p, prob: prob.evaluation_loss(p))})
sharded = st.sweep(problem, optimizers, **kwargs)
single = st.sweep(problem, optimizers, shard=False, **kwargs)
same = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
           for name in optimizers
           for a, b in zip(jax.tree_util.tree_leaves((sharded[name].params, sharded[name].observed,
                                                      sharded[name].diverged_at)),
                           jax.tree_util.tree_leaves((single[name].params, single[name].observed,
                                                      single[name].diverged_at))))
lane = st.run(problem, st.optim.usam(0.2, 0.1, m=1), steps=40, stride=20, key=jax.random.key(4),
              observe=kwargs["observe"])
lane_error = float(np.max(np.abs(sharded["1-sam"].params["u"][2, 1] - lane.params["u"])))
# Arrays committed to one device (device_put) must be accepted by a sharded sweep.
committed = jax.device_put(lane.params, jax.devices()[0])
onward = st.sweep(problem, optimizers, steps=5, seeds=[1, 4], params0=committed)
print(json.dumps({"devices": len(jax.devices()), "mesh": st.dynamics.lane_mesh(8).devices.size,
                  "bitwise_equal": same, "lane_error": lane_error,
                  "shape": list(sharded["gd"].observed["loss"].shape),
                  "continued_from_committed_params": bool(np.all(onward["gd"].status == "ok"))}))
"""


def _run_script(script, **env_vars):
    import json
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(env_vars, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_sharded_sweep_equals_unsharded_bit_for_bit():
    # Three devices for 8 lanes (and 2 for GD): the padding path is exercised.
    report = _run_script(SHARDING_SCRIPT, SHARP_THEORY_CPU_DEVICES="3")
    assert report["devices"] == 3 and report["mesh"] == 3
    assert report["bitwise_equal"] is True
    assert report["lane_error"] <= 1e-13
    assert report["shape"] == [4, 2, 3]
    assert report["continued_from_committed_params"] is True


def test_cpu_device_count_follows_the_environment():
    script = "import json, jax, sharp_theory; print(json.dumps({'devices': len(jax.devices())}))"
    assert _run_script(script, SHARP_THEORY_CPU_DEVICES="1") == {"devices": 1}
    assert _run_script(script, SHARP_THEORY_CPU_DEVICES="2") == {"devices": 2}
    import os
    import subprocess
    import sys
    env = dict(os.environ, SHARP_THEORY_CPU_DEVICES="two")
    out = subprocess.run([sys.executable, "-c", "import sharp_theory"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "SHARP_THEORY_CPU_DEVICES='two'" in out.stderr
    # An explicit XLA host-device count wins over ours.
    assert _run_script(script, SHARP_THEORY_CPU_DEVICES="2",
                       XLA_FLAGS="--xla_force_host_platform_device_count=5") == {"devices": 5}


def random_start(key):
    """A random initialization for the OP toy (module level: one function object, one compile)."""
    first, second = jax.random.split(key)
    return {"x": jax.random.normal(first, (3,)), "y": jax.random.normal(second, (3,))}


def test_random_initialization_per_seed():
    problem = st.problems.op_toy(noise=0.5)
    start = st.observables.all_of_params({"x0": lambda p: p["x"][0], "y0": lambda p: p["y"][0]})
    result = st.sweep(problem, st.optim.sam(lr=1e-2, rho=0.1), steps=30, seeds=[0, 3],
                      grid={"rho": [0.05, 0.2]}, observe=start, stride=10, init=random_start)
    x0 = result["sam"].observed["x0"][..., 0]                  # (rho, seed) at step 0
    assert x0[0, 0] == x0[1, 0] and x0[0, 1] == x0[1, 1]       # same seed, same start
    assert x0[0, 0] != x0[0, 1]                                # other seed, other start
    single = st.run(problem, st.optim.sam(lr=1e-2, rho=0.2), steps=30, key=jax.random.key(3),
                    observe=start, stride=10, init=random_start)
    np.testing.assert_allclose(result["sam"].observed["x0"][1, 1], single.observed["x0"],
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(result["sam"].params["x"][1, 1], single.params["x"],
                               rtol=1e-12, atol=1e-14)


def test_bad_random_initialization_is_rejected():
    problem = st.problems.op_toy(noise=0.5)
    optimizer = st.optim.gd(lr=1e-2)
    with pytest.raises(ConfigError, match="init"):
        st.run(problem, optimizer, steps=5, key=jax.random.key(0), init=random_start,
               params0=problem.params0)
    with pytest.raises(ConfigError, match="init"):
        st.sweep(problem, optimizer, steps=5, init=lambda key: {"x": jnp.ones(2), "y": jnp.ones(3)})
    with pytest.raises(ConfigError, match="init"):
        st.run(problem, optimizer, steps=5, key=jax.random.key(0), init="normal")
