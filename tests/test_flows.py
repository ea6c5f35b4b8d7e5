"""st.flow: closed forms (gradient flow on a quadratic, the central flow of a sharpening toy,
SAM's slow drift on f(xᵀy)), invariants (hypothesis), vmapped sweeps, and refusals."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from jax.flatten_util import ravel_pytree

import sharp_theory as st
from sharp_theory.dynamics.flows import (NULL_SPACE_TOLERANCE, SLOW_DENSE_MAX_PARAMETERS,
                                         VALLEY_SWITCH_TOLERANCE, FlowField, drift_rate, flow,
                                         integrate_flow, solve_sdcp, tangent_projection,
                                         top_eigenpair, valley_top_eigenpair)
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


def lotka_volterra_spread(a, amplitude, lr, horizon=20.0):
    """GD on the sharpening toy started at its edge s = 2/η with x = amplitude·√(2a), for ηt up
    to ``horizon``: the range of H = ½δ² + ¼r² − a log r (δ = s − 2/η, r = |x|) over the steps."""
    x, s, values = amplitude * np.sqrt(2 * a), 2.0 / lr, []
    for _ in range(int(round(horizon / lr))):
        values.append(0.5 * (s - 2 / lr) ** 2 + 0.25 * x * x - a * np.log(abs(x)))
        x, s = (1 - lr * s) * x, s + lr * (a - 0.5 * x * x)
    return np.ptp(values)


@settings(max_examples=10, deadline=None)
@given(a=hs.sampled_from([0.2, 0.5, 1.0]),
       amplitude=hs.sampled_from([0.3, 0.5, 0.8, 1.25, 2.0, 3.0]))
def test_gd_at_the_edge_of_the_sharpening_toy_is_a_lotka_volterra_cycle(a, amplitude):
    # papers/flows.md (central flows as η → 0): near the edge, in the time ηt, GD on ½sx² − as is
    # d log r/dτ = δ, dδ/dτ = a − ½r² to leading order, which conserves H; so the run circles the
    # central flow's point (δ = 0, r² = 2a) instead of converging to it, and H varies by O(η)
    # over a fixed ηt (measured: halving η multiplies the range by 0.25-0.48; a cycle that grew
    # or shrank by a fixed amount per unit ηt would keep it near 1).
    spreads = [lotka_volterra_spread(a, amplitude, lr) for lr in (0.05, 0.025, 0.0125)]
    assert spreads[1] <= 0.6 * spreads[0] and spreads[2] <= 0.6 * spreads[1], spreads


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
    ({"max_solver_steps": 0}, "max_solver_steps"), ({"valley": "sideways"}, "valley"),
    ({"valley": "reduced"}, "valley")])
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


# ---- Several eigenvalues at the edge (the semidefinite complementarity problem) ----

def coupled_objective(params, batch, constants):
    """½ zᵀS z − aᵀs with z = tanh(c x)/c, S = [[s₁, s₃], [s₃, s₂]] (params x₁, x₂, s₁, s₂, s₃).

    The curvature along x is S at x = 0 and falls with the oscillation's amplitude (tanh), so
    GD settles into a 2-cycle at the edge; s₃ couples the two directions.
    """
    x, s = params[:2], params[2:]
    z = jnp.tanh(constants["c"] * x) / constants["c"]
    matrix = jnp.array([[s[0], s[2]], [s[2], s[1]]])
    return 0.5 * z @ matrix @ z - jnp.dot(constants["a"], s)


def coupled_problem(a, x0, s0, c=0.3):
    return Problem(objective=coupled_objective, params0=jnp.asarray([*x0, *s0, 0.0], float),
                   constants={"a": jnp.asarray([*a, 0.0], float), "c": jnp.asarray(c, float)},
                   name="coupled-sharpening")


COUPLED_STEPS, COUPLED_STRIDE = 1200, 50


def coupled_gradient_flow(problem, lr, substeps=10):
    """Gradient flow dw/dt = −η∇L of a coupled problem by classical RK4 (``substeps`` per
    step), recorded every COUPLED_STRIDE steps: a reference independent of st.flow's solver (it
    matches st.flow's gradient flow at rtol 1e-9 to 9e-9) and a much cheaper compile than a
    second diffrax program."""
    gradient = jax.grad(lambda p: coupled_objective(p, None, problem.constants))
    h = 1.0 / substeps

    def rk4(_, w):
        k1 = -lr * gradient(w)
        k2 = -lr * gradient(w + 0.5 * h * k1)
        k3 = -lr * gradient(w + 0.5 * h * k2)
        k4 = -lr * gradient(w + h * k3)
        return w + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def record(w, _):
        w = jax.lax.fori_loop(0, COUPLED_STRIDE * substeps, rk4, w)
        return w, w

    w0 = problem.params0
    path = jax.jit(lambda w: jax.lax.scan(record, w, None, COUPLED_STEPS // COUPLED_STRIDE)[1])(w0)
    return np.concatenate([np.asarray(w0)[None], np.asarray(path)])


def test_central_flow_with_two_eigenvalues_at_the_edge():
    # Both checks of the k = 2 flow in one test, so that the suite compiles that flow once (its
    # compilation is most of the cost; two tests would each pay it on their own xdist worker).
    check_two_independent_blocks_are_the_one_eigenvalue_flows_of_each_block()
    check_two_eigenvalues_at_the_edge_predict_a_long_gd_run()


def check_two_independent_blocks_are_the_one_eigenvalue_flows_of_each_block():
    # Started at x = 0 with s₃ = 0 (and a₃ = 0) the problem is two independent sharpening toys
    # (blocks (x₁, s₁) and (x₂, s₂)); each block's one-eigenvalue flow is the closed form
    # s(t) = min(s₀ + ηat, 2/η) with σ² = 2a (test above). Block 1 reaches 2/η = 20 at t = 200,
    # block 2 at t ≈ 267; then the top two eigenvalues are equal (eigh returns any basis of their
    # plane) and Σ must have the spectrum {2a₁, 2a₂} whatever basis the flow works in.
    lr, a, s0 = 0.1, np.array([0.5, 0.3]), np.array([10.0, 12.0])
    several = flow(coupled_problem(a, [0.0, 0.0], s0), st.optim.gd(lr=lr), steps=COUPLED_STEPS,
                   stride=COUPLED_STRIDE, key=KEY, observe=PARAMS, edge_eigenvalues=2,
                   rtol=1e-8, atol=1e-11)
    for block in range(2):
        np.testing.assert_allclose(several.observed["w"][:, 2 + block],
                                   sharpening_closed_form(several.steps, lr, a[block], s0[block]),
                                   rtol=1e-5)
    np.testing.assert_allclose(several.observed["w"][:, [0, 1, 4]], 0.0, atol=1e-12)
    both = several.steps >= 300
    np.testing.assert_allclose(several.observed["flow.sigma2"][both], 2 * a.sum(), rtol=1e-5)
    for sigma in several.observed["flow.sigma2_matrix"][both]:
        np.testing.assert_allclose(np.linalg.eigvalsh(sigma), np.sort(2 * a), rtol=1e-5)
    # L = −aᵀs = −16 at the edge and ½ tr(ΣΛ) = Σ aᵢ · 20 = +16: the predicted average is 0.
    np.testing.assert_allclose(several.observed["flow.time_averaged_loss"][both], 0.0, atol=2e-4)
    # Only block 1 at the edge (t = 250): one eigenvalue held at σ² = 2a₁, the other free.
    assert several.observed["flow.sigma2"][several.steps == 250][0] == pytest.approx(2 * a[0],
                                                                                     rel=1e-5)
    assert np.all(several.observed["flow.sigma2"][several.steps < 200] == 0.0)


def check_two_eigenvalues_at_the_edge_predict_a_long_gd_run():
    # Both eigenvalues reach 2/η = 20 within 0.5% of each other and GD settles into a 2-cycle
    # whose direction wanders in their plane. Measured (1 200 steps; from t = 750 on, since GD
    # reaches the edge later than the flow: its oscillation grows from 10⁻³): the run's s₁, s₂
    # averaged over 150-step windows are 20.10-20.16 against the flow's 20 (0.8%); the top two
    # Hessian eigenvalues at the run's two-step centres lie in [19.86, 20.42] (2.1%); the run's
    # mean ‖x‖² is 0.0725 against the flow's tr Σ = 2(a₁ + a₂) = 0.076 (4.6%); the flow's
    # weight error is 0.116 × gradient flow's (0.25 against 2.15; most of it is s₃, which the
    # run moves by ±0.17 as the cycle's direction wanders and the flow holds at 0).
    # The one-eigenvalue flow cannot follow (it exhausts 10⁵ solver steps at the crossing).
    lr, a = 0.1, np.array([0.02, 0.018])
    problem = coupled_problem(a, [0.1, 0.1], [19.5, 19.6])
    optimizer = st.optim.gd(lr=lr)
    run = st.run(problem, optimizer, steps=COUPLED_STEPS, stride=1, key=KEY, observe=PARAMS)
    central = flow(problem, optimizer, steps=COUPLED_STEPS, stride=COUPLED_STRIDE, key=KEY,
                   observe=PARAMS, edge_eigenvalues=2, rtol=1e-6, atol=1e-9)
    gradient = coupled_gradient_flow(problem, lr)
    assert run.status == "ok" and central.status == "ok"
    w = np.asarray(run.observed["w"])
    settled = (central.steps >= 750) & (central.steps <= COUPLED_STEPS - 75)
    windows = np.stack([w[t - 75:t + 75].mean(0) for t in central.steps[settled]])
    flow_w = np.asarray(central.observed["w"])[settled]
    np.testing.assert_allclose(flow_w[:, 2:4], 2 / lr, rtol=1e-4)  # the flow holds both
    np.testing.assert_allclose(windows[:, 2:4], flow_w[:, 2:4], rtol=0.01)
    hessian_top2 = jax.vmap(lambda v: jnp.linalg.eigvalsh(jax.hessian(
        lambda p: coupled_objective(p, None, problem.constants))(v))[-2:])
    centres = 0.5 * (w[751:] + w[750:-1])
    np.testing.assert_allclose(np.asarray(hessian_top2(jnp.asarray(centres))), 2 / lr, rtol=0.03)
    variance = np.sum(w[750:, :2] ** 2, axis=1).mean()
    assert variance == pytest.approx(2 * a.sum(), rel=0.1)
    # The weight error against the run's 150-step averages, as a fraction of gradient flow's.
    flow_error = np.linalg.norm(windows - flow_w, axis=1).max()
    gradient_error = np.linalg.norm(windows - gradient[settled], axis=1).max()
    assert flow_error < 0.2 * gradient_error


@settings(max_examples=3, deadline=None)
@given(k=hs.sampled_from([2, 3]), seed=hs.integers(0, 2**16), shift=hs.floats(-2.0, 2.0))
def test_sdcp_solution_meets_the_complementarity_conditions_and_cvxpy(k, seed, shift):
    import cvxpy as cp

    rng = np.random.default_rng(seed)
    derivatives = rng.standard_normal((k, k, 2 * k * k))
    derivatives = 0.5 * (derivatives + derivatives.transpose(1, 0, 2))
    operator = 0.5 * np.einsum("ijn,kln->ijkl", derivatives, derivatives)
    linear = rng.standard_normal((k, k))
    linear = 0.5 * (linear + linear.T) + shift * np.eye(k)
    x = np.asarray(solve_sdcp(jnp.asarray(linear), jnp.asarray(operator), jnp.ones(k, bool)))
    slack = linear + np.einsum("ijkl,kl->ij", operator, x)
    scale = np.linalg.norm(linear)
    assert np.linalg.eigvalsh(x)[0] >= -1e-12 * scale
    assert np.linalg.eigvalsh(slack)[0] >= -1e-9 * scale
    assert abs(np.vdot(x, slack)) <= 1e-9 * scale * (1 + np.linalg.norm(x))
    # The same problem as a convex program in cvxpy (min ½⟨X, B[X]⟩ + ⟨A, X⟩ over X ⪰ 0).
    variable = cp.Variable((k, k), symmetric=True)
    matrix = operator.reshape(k * k, k * k)
    objective = 0.5 * cp.quad_form(cp.vec(variable, order="C"), cp.psd_wrap(matrix)) + cp.trace(
        linear @ variable)
    cp.Problem(cp.Minimize(objective), [variable >> 0]).solve()
    np.testing.assert_allclose(x, variable.value, atol=1e-5 * (1 + np.linalg.norm(x)))


def test_sdcp_with_one_active_eigenvalue_is_the_closed_form():
    operator = np.zeros((2, 2, 2, 2))
    operator[0, 0, 0, 0], operator[1, 1, 1, 1], operator[0, 0, 1, 1] = 2.0, 3.0, 0.5
    operator[1, 1, 0, 0] = 0.5
    linear = np.array([[-1.0, 0.3], [0.3, -5.0]])
    x = np.asarray(solve_sdcp(jnp.asarray(linear), jnp.asarray(operator),
                              jnp.asarray([True, False])))
    np.testing.assert_allclose(x, [[0.5, 0.0], [0.0, 0.0]], atol=1e-14)


@pytest.mark.parametrize("optimizer,kind", [(st.optim.usam(lr=0.1, rho=0.05), "central"),
                                            (st.optim.gd(lr=0.1), "gradient")])
def test_several_eigenvalues_only_for_the_gd_central_flow_refused_in_one_line(optimizer, kind):
    with pytest.raises(ConfigError, match="edge_eigenvalues") as error:
        flow(st.problems.op_toy(), optimizer, steps=10, key=KEY, kind=kind, edge_eigenvalues=2)
    assert "\n" not in str(error.value) and "gd's central flow only" in str(error.value)
    with pytest.raises(ConfigError, match="edge_eigenvalues=7"):
        flow(st.problems.op_toy(), st.optim.gd(lr=0.1), steps=10, key=KEY, edge_eigenvalues=7)


# ---- The slow flow without a dense eigendecomposition (Lanczos + RQI, Cholesky) ----

TOP_EIGENPAIR = jax.jit(top_eigenpair)  # one compiled program for every example (8 × 8)
ITERATIVE_TOP_EIGENPAIR = jax.jit(functools.partial(top_eigenpair, fallback=False))


@settings(max_examples=6, deadline=None)
@given(seed=hs.integers(0, 2**16), negative=hs.booleans())
def test_top_eigenpair_is_the_largest_eigenpair(seed, negative):
    # negative: the largest eigenvalue in magnitude is negative (power iteration would return
    # it); the result must still be the largest, from the iteration or the dense fallback.
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    values = rng.uniform(0.1, 1.0, 8) * (1.0 + np.arange(8))
    if negative:
        values[0] = -3.0 * values.max()
    matrix = (basis * values) @ basis.T
    lam, u = TOP_EIGENPAIR(jnp.asarray(matrix))
    assert float(lam) == pytest.approx(values.max(), rel=1e-12)
    top = basis[:, np.argmax(values)]
    assert abs(np.dot(np.asarray(u), top)) == pytest.approx(1.0, abs=1e-10)


def test_slow_flow_projection_and_eigenpair_match_the_dense_eigendecomposition():
    # On the benchmark's diagonal net (40 parameters, above SLOW_DENSE_MAX_PARAMETERS), at its
    # start and near the valley gradient descent reaches (where H has a 20-dimensional null
    # space and H² + δ²I is as ill-conditioned as it gets, (λ_max/δ)² = 1e8): the top eigenpair
    # and δ²(H² + δ²)⁻¹v against numpy's eigh, the slow flow's only two dense pieces.
    problem = st.problems.diagonal_linear(n=10, n_test=10, d=20, k=2, seed=0, init_scale=0.3)
    flat, unravel = ravel_pytree(problem.params0)
    field = FlowField(problem, st.optim.sam(lr=0.05, rho=0.01), unravel)
    assert flat.shape[0] > SLOW_DENSE_MAX_PARAMETERS
    descend = jax.jit(lambda v: jax.lax.fori_loop(0, 4000, lambda i, x: x - 0.05 * field.gradient(x),
                                                  v))  # 4 000 GD steps
    near_valley = descend(flat)
    assert float(field.loss(near_valley)) < 1e-4
    vector = np.cos(np.arange(flat.shape[0]))
    hessian_of, projection = jax.jit(jax.hessian(field.loss)), jax.jit(tangent_projection)
    for w in (flat, near_valley):
        hessian = np.asarray(hessian_of(w))
        hessian = 0.5 * (hessian + hessian.T)
        values, vectors = np.linalg.eigh(hessian)
        lam, u = ITERATIVE_TOP_EIGENPAIR(jnp.asarray(hessian))  # certified without eigh
        assert float(lam) == pytest.approx(values[-1], rel=1e-12)
        assert abs(np.dot(np.asarray(u), vectors[:, -1])) == pytest.approx(1.0, abs=1e-10)
        delta2 = (NULL_SPACE_TOLERANCE * values[-1]) ** 2
        dense = vectors @ (delta2 / (values**2 + delta2) * (vectors.T @ vector))
        np.testing.assert_allclose(projection(jnp.asarray(hessian), jnp.asarray(vector), delta2),
                                   dense, rtol=1e-7, atol=1e-7 * np.linalg.norm(dense))
    # The reduced flow's pieces above 24 parameters, near the valley (H ⪰ 0 up to the residual):
    # the power iteration alone (no fallback) and the whole drift against the eigh path.
    lam, u = jax.jit(functools.partial(valley_top_eigenpair, fallback=False))(jnp.asarray(hessian))
    assert float(lam) == pytest.approx(values[-1], rel=1e-12)
    assert abs(np.dot(np.asarray(u), vectors[:, -1])) == pytest.approx(1.0, abs=1e-10)
    drifts = [np.asarray(jax.jit(functools.partial(field.valley_drift, corrected=True,
                                                   dense=dense))(near_valley))
              for dense in (True, False)]
    np.testing.assert_allclose(drifts[1], drifts[0], rtol=0, atol=1e-7 * np.linalg.norm(drifts[0]))


# ---- The reduced slow flow: gradient flow to the valley, then the drift along it alone ----

def reduced_scalar_flow(x0, offset, lr, rho, valley="reduced"):
    # ½(xy − ½)² (scalars: f(xyᵀ) with 1 × 1 factors), started `offset` off the valley at x0;
    # the records are those of the full slow flow's tests above (one compiled program each).
    problem = product_problem([x0], [0.5 / x0 + offset])
    return flow(problem, st.optim.sam(lr=lr, rho=rho), steps=2000, stride=10, key=KEY,
                observe=SLOW_OBSERVE, kind="slow", valley=valley)


@settings(max_examples=6, deadline=None)
@given(x0=hs.floats(1.5, 2.5), offset=hs.floats(-0.03, 0.03), lr=hs.floats(0.05, 0.15),
       rho=hs.floats(0.02, 0.1))
def test_reduced_slow_flow_on_the_scalar_valley_is_the_closed_form(x0, offset, lr, rho):
    # Gradient flow conserves B = ½(x² − y²), so it lands on the valley xy = ½ at B₀; there the
    # limit drift gives dB/dt = −2ηρ²B, with its clock from 0 (the reduced flow's convention):
    # B(t) = B₀ e^{−2ηρ²t} from the switch on, B₀ before it, and xy = ½ at every record after.
    traj = reduced_scalar_flow(x0, offset, lr, rho)
    balancedness, lam = traj.observed["B"], traj.observed["lam"]  # lam = x² + y²
    xy = np.sqrt((lam + 2 * balancedness) * (lam - 2 * balancedness)) / 2
    b0 = 0.5 * (x0**2 - (0.5 / x0 + offset) ** 2)
    switch = float(traj.state["valley_step"])
    after = traj.steps >= switch
    assert 0 <= switch < 2000 and after.sum() > 100
    np.testing.assert_allclose(balancedness[~after], b0, rtol=1e-7)
    # Tolerance: the records come from Tsit5's dense output at rtol 1e-8, good to ≈ 1e-6 in x and
    # y over the horizon (the full flow's test above allows 1e-5 too); B = ½(x² − y²) inherits
    # an absolute error ≈ |x|δx once it has decayed.
    np.testing.assert_allclose(balancedness[after], b0 * np.exp(-2 * lr * rho**2 * traj.steps[after]),
                               rtol=1e-5, atol=2e-6)
    assert np.max(np.abs(xy - 0.5)[after]) <= 1e-8  # on the valley at every record
    assert np.all(np.diff(balancedness[after]) < 0)  # B falls (B₀ > 0 here)


def test_reduced_slow_flow_is_the_full_slow_flow_shifted_by_at_most_the_fitting_time():
    # Started 0.02 off the valley. The reduced flow's drift runs from t = 0 at the valley point;
    # the full flow's starts only once its projection δ²(H² + δ²)⁻¹ sees the valley (the
    # residual below ≈ δ), somewhere in the fitting phase [0, T_switch]. On the valley both give
    # dB/dt = −2ηρ²B, so B_reduced(t) = B_full(t + s) for one shift s ∈ [0, T_switch]: their
    # ratio is constant and s is in range (here s ≈ 8 steps of T_switch ≈ 30).
    lr, rho = 0.1, 0.1
    full = reduced_scalar_flow(2.0, 0.02, lr, rho, valley="full")
    reduced = reduced_scalar_flow(2.0, 0.02, lr, rho)
    switch = float(reduced.state["valley_step"])
    after = reduced.steps >= switch
    ratio = reduced.observed["B"][after][0] / full.observed["B"][after][0]
    np.testing.assert_allclose(reduced.observed["B"][after], ratio * full.observed["B"][after],
                               rtol=1e-5, atol=2e-6)  # the tolerance of the closed form above
    shift = -np.log(ratio) / (2 * lr * rho**2)
    assert 0 <= shift <= switch and 0 < switch < 100
    assert full.observed["B"][-1] < 0.05 * full.observed["B"][0]  # both moved


def test_reduced_slow_flow_equals_the_full_slow_flow_on_a_diagonal_net():
    # β = u⊙v (n = 3, d = 6), started on its valley by 3 000 GD steps; SAM at ηλ = 0.31, ρ = 0.05
    # for 10⁴ steps (‖β‖₁ moves by 7e-4, the weights by 0.01): the reduced flow is the full
    # slow flow to the solver's tolerance, and stays on the valley (‖∇L‖ ≤ 1e-9 at every record).
    problem = st.problems.diagonal_linear(n=3, n_test=3, d=6, k=1, seed=0)
    flat0, unravel = ravel_pytree(problem.params0)
    field = FlowField(problem, st.optim.sam(lr=0.1, rho=0.05), unravel)
    near = jax.jit(lambda v: jax.lax.fori_loop(0, 3000, lambda i, x: x - 0.1 * field.gradient(x),
                                               v))(flat0)
    problem = dataclasses.replace(problem, params0=unravel(near))
    observe = {"w": st.observables.of_params(lambda p: ravel_pytree(p)[0]),
               "grad_norm": lambda p, prob, state: jnp.linalg.norm(
                   ravel_pytree(jax.grad(prob.loss_function())(p, prob.full_batch()))[0])}
    flows = [flow(problem, st.optim.sam(lr=0.1, rho=0.05), steps=10_000, stride=250, key=KEY,
                  observe=observe, kind="slow-corrected", valley=valley)
             for valley in ("full", "reduced")]
    full, reduced = (np.asarray(f.observed["w"]) for f in flows)
    assert float(flows[1].state["valley_step"]) == 0.0  # started on the valley
    assert np.max(flows[1].observed["grad_norm"]) <= 1e-9
    assert np.max(np.linalg.norm(full - reduced, axis=1)) <= 5e-6
    assert np.linalg.norm(reduced[-1] - reduced[0]) > 1e-3  # it moved 200× more than that


def test_reduced_slow_flow_refuses_a_start_far_from_any_valley_in_one_line():
    # At η = 1e-9 gradient flow does not move in 2 000 steps: the start never reaches a valley.
    with pytest.raises(ConfigError, match="valley") as error:
        reduced_scalar_flow(2.0, 0.3, 1e-9, 0.1)
    assert "\n" not in str(error.value) and f"{VALLEY_SWITCH_TOLERANCE:g}" in str(error.value)
