"""st.flow: closed forms (gradient flow on a quadratic, the central flow of a sharpening toy,
SAM's slow drift on f(xᵀy)), invariants (hypothesis), vmapped sweeps, and refusals."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import sharp_theory as st
from sharp_theory.dynamics.flows import drift_rate, flow, integrate_flow
from sharp_theory.errors import ConfigError
from sharp_theory.problems.base import Problem

KEY = jax.random.key(0)


def quadratic_objective(params, batch, constants):
    return 0.5 * jnp.sum(constants["curvatures"] * params**2)


def quadratic(curvatures, w0):
    return Problem(objective=quadratic_objective, params0=jnp.asarray(w0, float),
                   constants={"curvatures": jnp.asarray(curvatures, float)}, name="quadratic")


def sharpening_objective(params, batch, constants):
    """L(x, s) = ½ s x² − a s: the curvature along x is s, and gradient flow raises it at rate ηa."""
    x, s = params[0], params[1]
    return 0.5 * s * x**2 - constants["a"] * s


def sharpening_toy(a, s0, x0=0.0):
    return Problem(objective=sharpening_objective, params0=jnp.asarray([x0, s0], float),
                   constants={"a": jnp.asarray(a, float)}, name="sharpening-toy")


def product_objective(params, batch, constants):
    """½(xᵀy − t)²: its minimizers form the manifold xᵀy = t."""
    return 0.5 * (jnp.dot(params["x"], params["y"]) - constants["target"]) ** 2


def product_problem(x, y, target=0.5):
    return Problem(objective=product_objective,
                   params0={"x": jnp.asarray(x, float), "y": jnp.asarray(y, float)},
                   constants={"target": jnp.asarray(target, float)}, name="product")


PARAMS = {"w": st.observables.of_params(lambda w: w)}
BALANCEDNESS = {"B": st.observables.of_params(st.measure.balancedness)}
SLOW_OBSERVE = {**BALANCEDNESS, "lam": st.observables.of_params(
    lambda p: p["x"][0] ** 2 + p["y"][0] ** 2)}


def test_gradient_flow_on_a_quadratic_is_the_exponential():
    curvatures, w0, lr = np.array([3.0, 1.0, 0.2]), np.array([1.0, -2.0, 0.5]), 0.1
    traj = flow(quadratic(curvatures, w0), st.optim.gd(lr=lr), steps=50, stride=10, key=KEY,
                observe=PARAMS, kind="gradient")
    exact = np.exp(-lr * np.outer(traj.steps, curvatures)) * w0
    np.testing.assert_allclose(traj.observed["w"], exact, rtol=1e-6, atol=1e-9)
    assert traj.status == "ok" and traj.optimizer == "gd gradient flow"


def test_central_flow_below_the_edge_is_gradient_flow():
    problem = quadratic([3.0, 1.0, 0.2], [1.0, 1.0, 1.0])
    optimizer = st.optim.gd(lr=0.5)  # ηλ = 1.5 < 2
    central = flow(problem, optimizer, steps=50, stride=10, key=KEY, observe=PARAMS)
    gradient = flow(problem, optimizer, steps=50, stride=10, key=KEY, observe=PARAMS,
                    kind="gradient")
    np.testing.assert_allclose(central.observed["w"], gradient.observed["w"], rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(central.observed["flow.sigma2"], 0.0)


def sharpening_closed_form(steps, lr, a, s0):
    """s(t) = min(s0 + ηat, 2/η) at x = 0; at the edge σ² = 2a and the averaged loss is 0."""
    return np.minimum(s0 + lr * a * steps, 2.0 / lr)


def test_gd_central_flow_holds_the_edge_with_the_closed_form_variance():
    lr, a, s0 = 0.1, 0.5, 10.0  # the edge 2/η = 20 is reached at t = 200
    traj = flow(sharpening_toy(a, s0), st.optim.gd(lr=lr), steps=600, stride=50, key=KEY,
                observe=PARAMS)
    s = traj.observed["w"][:, 1]
    np.testing.assert_allclose(s, sharpening_closed_form(traj.steps, lr, a, s0), rtol=1e-5)
    at_edge = traj.steps >= 300
    np.testing.assert_allclose(traj.observed["flow.sigma2"][at_edge], 2 * a, rtol=1e-5)
    np.testing.assert_allclose(traj.observed["flow.time_averaged_loss"][at_edge], 0.0, atol=1e-5)
    np.testing.assert_allclose(traj.observed["flow.edge"][at_edge], 1.0, rtol=1e-6)
    assert np.all(traj.observed["flow.sigma2"][traj.steps < 200] == 0.0)


def test_usam_central_flow_stops_at_usam_edge():
    lr, rho, a = 0.1, 0.05, 0.5
    traj = flow(sharpening_toy(a, 10.0), st.optim.usam(lr=lr, rho=rho), steps=600, stride=50,
                key=KEY, observe=PARAMS)
    edge = (np.sqrt(1 + 8 * rho / lr) - 1) / (2 * rho)  # ηs(1 + ρs) = 2
    assert traj.observed["w"][-1, 1] == pytest.approx(edge, rel=1e-5)
    assert traj.observed["flow.edge"][-1] == pytest.approx(1.0, rel=1e-6)


def test_usam_central_flow_at_rho_zero_is_gd_central_flow():
    problem = sharpening_toy(0.5, 10.0)
    usam = flow(problem, st.optim.usam(lr=0.1, rho=0.0), steps=600, stride=50, key=KEY,
                observe=PARAMS)
    gd = flow(problem, st.optim.gd(lr=0.1), steps=600, stride=50, key=KEY, observe=PARAMS)
    np.testing.assert_allclose(usam.observed["w"], gd.observed["w"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind,rate", [("slow", lambda lr, rho, lam: 0.5 * lr * rho**2),
                                       ("slow-corrected",
                                        lambda lr, rho, lam: 2 * lr * rho**2 / (2 - lr * lam)**2)])
def test_slow_flow_decays_balancedness_at_the_closed_form_rate(kind, rate):
    # On the minimizer manifold of ½(xy − t)² (scalars), λ = x² + y² and the drift gives
    # dB/dt = −4c B with c the drift rate; started on the manifold the flow stays there.
    x0, target, lr, rho = 2.0, 0.5, 0.1, 0.1
    problem = product_problem([x0], [target / x0], target)
    traj = flow(problem, st.optim.sam(lr=lr, rho=rho), steps=2000, stride=10, key=KEY,
                observe=SLOW_OBSERVE, kind=kind)
    balancedness, lam = traj.observed["B"], traj.observed["lam"]
    # Integrate dB/dt = −4 c(λ(t)) B along the recorded λ (trapezoid in log B).
    rates = 4 * rate(lr, rho, lam) * np.ones_like(lam)
    log_b = np.log(balancedness[0]) - np.concatenate(
        [[0.0], np.cumsum(0.5 * (rates[1:] + rates[:-1]) * np.diff(traj.steps))])
    np.testing.assert_allclose(np.log(balancedness), log_b, atol=2e-4)
    assert balancedness[-1] < 0.6 * balancedness[0]  # it moved
    if kind == "slow":
        np.testing.assert_allclose(balancedness, balancedness[0] * np.exp(-2 * lr * rho**2 * traj.steps),
                                   rtol=1e-5)


def test_slow_flows_at_rho_zero_are_gradient_flow():
    # The flows lab uses the slow flow at ρ = 0 as its gradient-flow baseline (one compiled
    # program, reused from the test above); off the manifold it must be gradient flow, which
    # conserves B while λ = x² + y² falls to the manifold's.
    problem = product_problem([2.0], [0.6])
    slow = flow(problem, st.optim.sam(lr=0.1, rho=0.0), steps=2000, stride=10, key=KEY,
                observe=SLOW_OBSERVE, kind="slow-corrected")
    gradient = flow(problem, st.optim.sam(lr=0.1, rho=0.0), steps=2000, stride=10, key=KEY,
                    observe=SLOW_OBSERVE, kind="gradient")
    np.testing.assert_allclose(slow.observed["lam"], gradient.observed["lam"], rtol=1e-7)
    np.testing.assert_allclose(slow.observed["B"], 0.5 * (4.0 - 0.36), rtol=1e-7)
    assert slow.observed["lam"][-1] < 0.95 * slow.observed["lam"][0]  # it moved


def test_corrected_drift_rate_tends_to_the_limit():
    lam = np.array([1e-6, 1e-3, 1.0, 10.0])
    limit = np.asarray(drift_rate(0.1, 0.2, lam, corrected=False))
    corrected = np.asarray(drift_rate(0.1, 0.2, lam, corrected=True))
    np.testing.assert_allclose(corrected / limit, 4 / (2 - 0.1 * lam) ** 2)
    assert corrected[0] == pytest.approx(limit[0], rel=1e-6)


@settings(max_examples=6, deadline=None)
@given(x=hs.lists(hs.floats(-1.0, 1.0), min_size=3, max_size=3),
       y=hs.lists(hs.floats(-1.0, 1.0), min_size=3, max_size=3))
def test_gradient_flow_conserves_balancedness(x, y):
    # For f(xᵀy), d/dt(‖x‖² − ‖y‖²) = 0 under gradient flow (the invariant SAM breaks).
    problem = st.problems.op_toy(x0=x, y0=y)
    traj = flow(problem, st.optim.gd(lr=0.05), steps=200, stride=50, key=KEY,
                observe=BALANCEDNESS, kind="gradient")
    np.testing.assert_allclose(traj.observed["B"], traj.observed["B"][0], atol=1e-7)


@settings(max_examples=6, deadline=None)
@given(a=hs.floats(0.1, 2.0), s0=hs.floats(1.0, 15.0), lr=hs.sampled_from([0.05, 0.1, 0.2]))
def test_central_flow_keeps_sigma2_nonnegative_and_the_edge(a, s0, lr):
    problem = sharpening_toy(a, s0)
    traj = flow(problem, st.optim.gd(lr=lr), steps=600, stride=50, key=KEY, observe=PARAMS)
    assert np.all(traj.observed["flow.sigma2"] >= 0)
    assert np.all(traj.observed["flow.edge"] <= 1 + 1e-6)
    np.testing.assert_allclose(traj.observed["w"][:, 1],
                               sharpening_closed_form(traj.steps, lr, a, min(s0, 2 / lr)),
                               rtol=1e-5)


def test_a_vmapped_sweep_of_flows_is_one_call_and_matches_single_flows():
    problem, lrs = sharpening_toy(0.5, 10.0), jnp.asarray([0.05, 0.1, 0.2])
    observables = st.dynamics.as_observables(PARAMS)

    def final_s(lr):
        template = st.optim.gd(lr=0.1)
        optimizer = type(template)(template.rule, {"lr": lr})  # a traced learning rate
        _, observed, _, _ = integrate_flow(problem, optimizer, problem.params0, steps=600,
                                           stride=50, observables=observables, kind="central")
        return observed["w"][-1, 1]

    swept = jax.jit(jax.vmap(final_s))(lrs)
    singles = [flow(problem, st.optim.gd(lr=float(lr)), steps=600, stride=50, key=KEY,
                    observe=PARAMS).observed["w"][-1, 1] for lr in lrs]
    np.testing.assert_allclose(swept, singles, rtol=1e-9)
    np.testing.assert_allclose(swept, np.minimum(10.0 + lrs * 0.5 * 600, 2 / lrs), rtol=1e-5)


@pytest.mark.parametrize("optimizer", [
    st.optim.sgd(lr=0.1), st.optim.gd(lr=0.1, base="momentum"), st.optim.sam(lr=0.1, rho=0.1, p=np.inf),
    st.optim.sam(lr=0.1, rho=0.1, m=2), st.optim.sam(lr=0.1, rho=0.1, batch_size=2),
    st.optim.asam(lr=0.1, rho=0.1)], ids=lambda o: o.name)
def test_an_optimizer_without_a_flow_is_refused_in_one_line(optimizer):
    with pytest.raises(ConfigError, match="optimizer") as error:
        flow(st.problems.op_toy(), optimizer, steps=10, key=KEY)
    assert "\n" not in str(error.value) and "no flow predicts" in str(error.value)


@pytest.mark.parametrize("arguments,parameter", [
    ({"kind": "slow"}, "kind"), ({"kind": "central flow"}, "kind"), ({"steps": 0}, "steps"),
    ({"stride": 0}, "stride"), ({"rtol": 0.0}, "rtol"), ({"key": 0}, "key"),
    ({"max_solver_steps": 0}, "max_solver_steps")])
def test_bad_arguments_are_refused_before_any_work(arguments, parameter):
    settings_ = {"steps": 10, "key": KEY, **arguments}
    with pytest.raises(ConfigError, match=parameter):
        flow(st.problems.op_toy(), st.optim.gd(lr=0.1), **settings_)


def test_a_noisy_problem_without_population_loss_is_refused():
    problem = st.problems.op_toy(noise=0.5)
    no_population = Problem(objective=problem.objective, params0=problem.params0,
                            constants=problem.constants, sampler=problem.sampler, name="noisy")
    with pytest.raises(ConfigError, match="population"):
        flow(no_population, st.optim.gd(lr=0.1), steps=10, key=KEY)


def test_a_flow_that_runs_out_of_solver_steps_says_where():
    traj = flow(sharpening_toy(0.5, 10.0), st.optim.gd(lr=0.1), steps=600, stride=50, key=KEY,
                observe=PARAMS, max_solver_steps=3)
    assert traj.diverged_at > 0 and np.isnan(traj.observed["w"][-1]).all()
    assert np.isfinite(traj.observed["w"][0]).all()
