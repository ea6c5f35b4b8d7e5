"""Dense Hessians against closed forms; balancedness of pairs and layers."""
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st_h

import sharp_theory as st


def test_hessian_of_quadratic_is_its_matrix():
    matrix = jnp.array([[4.0, 1.0, 0.0], [1.0, 3.0, -0.5], [0.0, -0.5, 2.0]])
    fn = lambda w: 0.5 * w @ matrix @ w  # noqa: E731
    w = jnp.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(st.measure.hessian(fn, w), matrix, rtol=0, atol=1e-14)
    np.testing.assert_allclose(st.measure.hessian_eigenvalues(fn, w), np.linalg.eigvalsh(matrix),
                               rtol=1e-14)
    np.testing.assert_allclose(st.measure.lambda_max(fn, w, method="dense"),
                               np.linalg.eigvalsh(matrix)[-1], rtol=1e-14)
    np.testing.assert_allclose(st.measure.hessian_trace(fn, w), 9.0, rtol=1e-15)
    v = jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(st.measure.hessian_vector_product(fn, w, v), matrix @ v, rtol=1e-14)


def test_hessian_of_a_pytree_matches_the_closed_form_of_f_of_xy():
    # f(xᵀy) = (xᵀy - 1)²: ∇²f = 2 [y; x][y; x]ᵀ + 2 (xᵀy - 1) [[0, I], [I, 0]]
    x, y = jnp.array([0.5, -1.0]), jnp.array([2.0, 0.25])
    fn = lambda p: (p["x"] @ p["y"] - 1.0) ** 2  # noqa: E731
    stacked = jnp.concatenate([y, x])
    residual = x @ y - 1.0
    off_diagonal = jnp.block([[jnp.zeros((2, 2)), jnp.eye(2)], [jnp.eye(2), jnp.zeros((2, 2))]])
    expected = 2 * jnp.outer(stacked, stacked) + 2 * residual * off_diagonal
    np.testing.assert_allclose(st.measure.hessian(fn, {"x": x, "y": y}), expected, atol=1e-14)


@given(values=st_h.lists(st_h.floats(-3, 3), min_size=12, max_size=12))
@settings(max_examples=25)
def test_hessian_vector_product_matches_dense_hessian(values):
    w = jnp.asarray(values[:6])
    v = jnp.asarray(values[6:])
    fn = lambda u: jnp.sum(jnp.sin(u) * jnp.roll(u, 1)) + 0.1 * jnp.sum(u ** 4)  # noqa: E731
    np.testing.assert_allclose(st.measure.hessian_vector_product(fn, w, v),
                               st.measure.hessian(fn, w) @ v, rtol=1e-12, atol=1e-12)


def test_balancedness_of_pair_and_layers():
    pair = {"x": jnp.array([3.0, 0.0]), "y": jnp.array([1.0, 1.0])}
    assert float(st.measure.balancedness(pair)) == 0.5 * (9.0 - 2.0)
    layers = [{"x": jnp.ones((3, 2)), "y": jnp.zeros((3, 2))}, pair]
    np.testing.assert_allclose(st.measure.balancedness(layers), [3.0, 3.5])
    # The paper's initialization x0 = (0.2, -0.1, 0.3), y0 = -3 x0 has B0 = -4 ‖x0‖² = -0.56.
    np.testing.assert_allclose(st.measure.balancedness(st.problems.op_toy().params0), -0.56,
                               rtol=1e-14)


def test_gradient_imbalance_matches_hand_gradients():
    target = jnp.array([[0.5, 0.0], [0.0, 0.0]])
    loss = lambda p: jnp.sum((jnp.outer(p["x"], p["y"]) - target) ** 2)  # noqa: E731
    params = {"x": jnp.array([0.2, -0.1]), "y": jnp.array([0.7, 0.3])}
    gradient_matrix = 2 * (jnp.outer(params["x"], params["y"]) - target)
    g_x, g_y = gradient_matrix @ params["y"], gradient_matrix.T @ params["x"]
    np.testing.assert_allclose(st.measure.gradient_imbalance(loss, params),
                               g_x @ g_x - g_y @ g_y, rtol=1e-14)
