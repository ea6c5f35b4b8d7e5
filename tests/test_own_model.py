"""A researcher's own model, safely (issue 24): bases that cannot flip sign, a runaway status,
one dtype policy, problems checked when built, ready observables, short reprs, models from
Equinox / Flax / Haiku."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sharp_theory as st
from sharp_theory.errors import ConfigError

D, H, N = 5, 4, 12


def two_layer_data():
    k1, k2 = jax.random.split(jax.random.key(0))
    X = jax.random.normal(k1, (N, D))
    y = X @ jnp.linspace(-1.0, 1.0, D) + 0.1 * jax.random.normal(k2, (N,))
    return X, y


def two_layer_loss(p, batch):
    x, t = batch
    return 0.5 * jnp.mean((x @ p["W"].T @ p["a"] - t) ** 2)


def two_layer_params(dtype=jnp.float64):
    k1, k2 = jax.random.split(jax.random.key(1))
    return {"W": (0.3 * jax.random.normal(k1, (H, D))).astype(dtype),
            "a": (0.3 * jax.random.normal(k2, (H,))).astype(dtype)}


@pytest.mark.parametrize("transform", [optax.adam(1e-2), optax.adamw(1e-2), optax.sgd(0.1),
                                       optax.sgd(0.1, momentum=0.9)])
def test_an_optax_base_that_holds_a_learning_rate_is_refused_with_the_fix(transform):
    with pytest.raises(ConfigError) as error:
        st.optim.sam(lr=0.1, rho=0.05, base=transform)
    message = str(error.value)
    assert "\n" not in message and "optax.scale_by_adam()" in message and "base=" in message


def test_learning_rate_free_optax_bases_are_accepted_and_descend():
    problem = st.problems.from_loss(two_layer_loss, two_layer_params(), two_layer_data())
    for transform in (optax.scale_by_adam(), optax.trace(0.9), optax.identity(),
                      optax.chain(optax.clip_by_global_norm(10.0), optax.scale_by_adam())):
        traj = st.run(problem, st.optim.sam(lr=1e-2, rho=0.02, base=transform), steps=50,
                      key=jax.random.key(0), stride=50)
        assert traj.status == "ok" and traj.observed["loss"][-1] < traj.observed["loss"][0]


def test_a_runaway_loss_has_its_own_status():
    problem = st.problems.from_loss(lambda w, b: jnp.sum(w ** 2), jnp.asarray([1.0]))
    # lr = 1.5 > 2/λ = 1: w -> -2w, the loss grows 4x per step: 4^7 ≈ 1.6e4 after 7 steps, 4^6
    # ≈ 4.1e3 after 6 (below the 1e4 factor: still "ok", finite, not diverged).
    traj = st.run(problem, st.optim.gd(lr=1.5), steps=7, key=jax.random.key(0))
    assert traj.status.startswith("runaway: the loss grew from 1 to 1.64e+04"), traj.status
    below = st.run(problem, st.optim.gd(lr=1.5), steps=6, key=jax.random.key(0))
    assert below.status == "ok"
    result = st.sweep(problem, st.optim.gd(lr=0.01), grid={"lr": [0.01, 1.5]}, steps=7)
    statuses = result["gd"].status[:, 0]
    assert statuses[0] == "ok" and statuses[1].startswith("runaway")


def test_float32_inputs_run_in_float64_unless_float32_is_asked_for():
    params32 = two_layer_params(jnp.float32)
    X, y = two_layer_data()
    problem = st.problems.from_loss(two_layer_loss, params32, (X.astype(jnp.float32), y))
    assert {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(problem.params0)} == {"float64"}
    assert problem.examples[0].dtype == jnp.float64
    explicit = st.problems.from_loss(two_layer_loss, params32, (X, y), dtype="float32")
    assert {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(explicit.params0)} == {"float32"}
    assert explicit.examples[0].dtype == jnp.float32
    # float32 starting parameters for a float64 problem: refused, naming the leaf.
    with pytest.raises(ConfigError, match=r"params0\['W'\]=.dtype float32.*dtype='float32'"):
        st.run(problem, st.optim.gd(lr=0.1), steps=2, key=jax.random.key(0), params0=params32)
    with pytest.raises(ConfigError, match="dtype='float16'"):
        st.problems.from_loss(two_layer_loss, params32, (X, y), dtype="float16")


def test_a_problem_is_checked_once_when_built():
    data = two_layer_data()
    with pytest.raises(ConfigError, match=r"invalid loss_fn=.an output of shape \(2,\).*scalar"):
        st.problems.from_loss(lambda p, b: (b[0] @ p["W"].T @ p["a"] - b[1]) ** 2,
                              two_layer_params(), data)
    bad = {"W": jnp.zeros((H, D + 1)), "a": jnp.zeros(H)}
    with pytest.raises(ConfigError) as error:
        st.problems.from_loss(two_layer_loss, bad, data)
    message = str(error.value)
    assert "\n" not in message and "'W': (4, 6)" in message and "(2, 5)" in message
    with pytest.raises(ConfigError, match="finite loss at the initial parameters"):
        st.problems.from_loss(lambda p, b: jnp.log(-jnp.sum(p)), jnp.ones(2))
    X, y = data
    with pytest.raises(ConfigError, match=r"data\[0\]=.nan at index \(3, 1\)"):
        st.problems.from_loss(two_layer_loss, two_layer_params(), (X.at[3, 1].set(jnp.nan), y))


def test_a_batch_larger_than_the_data_is_refused():
    problem = st.problems.from_loss(two_layer_loss, two_layer_params(), two_layer_data())
    with pytest.raises(ConfigError, match=r"batch_size=100: expected at most the 12 examples"):
        st.run(problem, st.optim.sgd(lr=0.1, batch_size=100), steps=2, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="batch_size=13"):
        st.sweep(problem, st.optim.sgd(lr=0.1), steps=2, batch_size=13)
    st.run(problem, st.optim.sgd(lr=0.1, batch_size=12), steps=2, key=jax.random.key(0))


def test_ready_observables_match_the_measures_and_keep_the_loss():
    problem = st.problems.from_loss(two_layer_loss, two_layer_params(), two_layer_data())
    observe = {"lam": st.observables.lambda_max, "trace": st.observables.hessian_trace,
               "norm": st.observables.param_norm, "grad": st.observables.grad_norm}
    traj = st.run(problem, st.optim.sam(lr=0.05, rho=0.02), steps=20, stride=10,
                  key=jax.random.key(0), observe=observe)
    assert set(traj.observed) == {"loss", "lam", "trace", "norm", "grad"}
    fn = st.measure.full_batch_loss(problem)
    w = traj.params
    hessian = st.measure.hessian(fn, w)
    np.testing.assert_allclose(traj.observed["lam"][-1], np.linalg.eigvalsh(hessian)[-1], rtol=1e-12)
    np.testing.assert_allclose(traj.observed["trace"][-1], np.trace(hessian), rtol=1e-12)
    flat = jax.flatten_util.ravel_pytree(w)[0]
    np.testing.assert_allclose(traj.observed["norm"][-1], np.linalg.norm(flat), rtol=1e-12)
    grad = jax.flatten_util.ravel_pytree(jax.grad(fn)(w))[0]
    np.testing.assert_allclose(traj.observed["grad"][-1], np.linalg.norm(grad), rtol=1e-12)
    np.testing.assert_allclose(traj.observed["loss"][-1], fn(w), rtol=1e-12)
    dropped = st.run(problem, st.optim.gd(lr=0.05), steps=2, key=jax.random.key(0),
                     observe={"loss": None, "norm": st.observables.param_norm})
    assert list(dropped.observed) == ["norm"]
    assert callable(st.measure.hessian) and callable(st.measure.lambda_max)


def test_ready_hessian_observables_of_a_model_above_the_dense_limit_use_hessian_products():
    # A 24-input, width-48 tanh net: 1,200 parameters, above DENSE_LIMIT (300) and above the
    # 1,000 at which the dense-only observables refused. λ_max by Lanczos on HVPs and the trace
    # from 1,200 unit-vector products, compared with eigh of the dense Hessian.
    width = 48
    k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
    X = jax.random.normal(k1, (40, 24))
    y = jnp.tanh(X[:, 0])
    params = {"W": 0.3 * jax.random.normal(k2, (width, 24)),
              "a": 0.3 * jax.random.normal(k3, (width,))}

    def loss(p, batch):
        inputs, targets = batch
        return 0.5 * jnp.mean((jnp.tanh(inputs @ p["W"].T) @ p["a"] - targets) ** 2)

    problem = st.problems.from_loss(loss, params, (X, y))
    assert st.measure.parameter_count(params) > st.observables.DENSE_LIMIT
    traj = st.run(problem, st.optim.sam(lr=0.1, rho=0.02), steps=10, stride=10,
                  key=jax.random.key(0), observe={"lam": st.observables.lambda_max,
                                                  "trace": st.observables.hessian_trace})
    hessian = np.asarray(st.measure.hessian(st.measure.full_batch_loss(problem), traj.params))
    eigenvalues = np.linalg.eigvalsh(hessian)
    np.testing.assert_allclose(traj.observed["lam"][-1], eigenvalues[-1], rtol=1e-10)
    np.testing.assert_allclose(traj.observed["trace"][-1], np.trace(hessian), rtol=1e-10)
    assert not np.isclose(eigenvalues[-1], eigenvalues[-2], rtol=1e-6)  # a top gap Lanczos needs


def test_reprs_show_shapes_not_data_and_testing_lists_its_names():
    X = jnp.ones((5000, D))
    problem = st.problems.from_loss(lambda p, b: jnp.mean((b @ p) ** 2), jnp.ones(D), X)
    assert len(repr(problem)) < 200 and "5000 examples" in repr(problem)
    result = st.sweep(problem, st.optim.sam(lr=0.01, rho=0.01), grid={"rho": [0.0, 0.01]},
                      seeds=50, steps=200, stride=1)
    assert len(repr(result)) < 300 and "shape=(2, 50)" in repr(result)
    assert len(repr(result["sam"])) < 300
    text = repr(st.optim.sam(lr=0.1, rho=0.1, base=optax.scale_by_adam()))
    assert "momentum=" not in text and "b1=" not in text and "kind='custom'" in text
    assert {"claim", "fuzz", "instances", "replay"} <= set(dir(st.testing))


def _mse(outputs, targets):
    return jnp.mean((outputs[:, 0] - targets) ** 2)


def _check_model_problem(problem):
    assert {str(leaf.dtype) for leaf in jax.tree_util.tree_leaves(problem.params0)} == {"float64"}
    traj = st.run(problem, st.optim.sam(lr=0.05, rho=0.02), steps=40, stride=40,
                  key=jax.random.key(0), observe={"lam": st.observables.lambda_max})
    assert traj.status == "ok" and traj.observed["loss"][-1] < traj.observed["loss"][0]
    fn = st.measure.full_batch_loss(problem)
    np.testing.assert_allclose(traj.observed["lam"][-1],
                               st.measure.lambda_max(fn, traj.params, method="dense"), rtol=1e-10)
    result = st.sweep(problem, st.optim.sam(lr=0.05, rho=0.02), grid={"rho": [0.0, 0.02]},
                      seeds=2, steps=5)
    assert result.shape == (2, 2)
    functional = st.run(problem, st.optim.functional_sam(lr=0.05, rho=0.02), steps=3,
                        key=jax.random.key(0))
    assert functional.status == "ok"


def test_an_equinox_module_is_a_problem():
    eqx = pytest.importorskip("equinox")
    X, y = two_layer_data()
    model = eqx.nn.MLP(D, 1, H, 1, activation=jnp.tanh, key=jax.random.key(0))
    _check_model_problem(st.problems.from_model(model, _mse, (X, y)))


def test_flax_nnx_and_linen_modules_are_problems():
    pytest.importorskip("flax")
    from flax import linen, nnx
    X, y = two_layer_data()
    _check_model_problem(st.problems.from_model(nnx.Linear(D, 1, rngs=nnx.Rngs(0)), _mse, (X, y)))
    dense = linen.Dense(1)
    with jax.numpy_dtype_promotion("standard"):  # Linen's init mixes its float32 kernel with X
        variables = dense.init(jax.random.key(0), X)
    _check_model_problem(st.problems.from_model(dense, _mse, (X, y), params=variables))
    with pytest.raises(ConfigError, match="params=None"):
        st.problems.from_model(dense, _mse, (X, y))


def test_a_haiku_transformed_function_is_a_problem():
    hk = pytest.importorskip("haiku")
    X, y = two_layer_data()
    net = hk.transform(lambda x: hk.Linear(1)(jnp.tanh(hk.Linear(H)(x))))
    with jax.numpy_dtype_promotion("standard"):  # Haiku's init mixes float32 weights with X
        params = net.init(jax.random.key(0), X)
    _check_model_problem(st.problems.from_model(net, _mse, (X, y), params=params))
    with pytest.raises(ConfigError, match="invalid model="):
        st.problems.from_model(lambda x: x, _mse, (X, y))
