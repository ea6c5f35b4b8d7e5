"""st.measure forgetting functions: exact on quadratics, SC/AG/MAG on surfaces of known curvature."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import sharp_theory as st
from sharp_theory.errors import ConfigError

P = 5  # one shape for every drawn instance: one compiled program per function


def quadratic_task(seed):
    rng = np.random.default_rng(seed)
    root = rng.standard_normal((P, P))
    hessian = root @ root.T + 0.1 * np.eye(P)
    minimum = rng.standard_normal(P)
    loss = lambda w: 0.5 * (w - minimum) @ hessian @ (w - minimum) + 0.3  # noqa: E731
    return jnp.asarray(hessian), jnp.asarray(minimum), loss


@settings(max_examples=8)
@given(seed=hs.integers(0, 10_000), scale=hs.sampled_from([1e-3, 0.1, 3.0]))
def test_on_a_quadratic_forgetting_equals_the_quadratic_prediction(seed, scale):
    hessian, minimum, loss = quadratic_task(seed)
    params_b = minimum + scale * jnp.asarray(np.random.default_rng(seed + 1).standard_normal(P))
    exact = st.measure.exact_forgetting(loss, minimum, params_b)
    predicted = st.measure.quadratic_forgetting(loss, minimum, params_b)
    assert float(exact) == pytest.approx(float(predicted), rel=1e-10, abs=1e-14)
    bound = st.measure.forgetting_bound(loss, minimum, params_b)
    assert float(predicted) <= float(bound) * (1 + 1e-10)
    delta = params_b - minimum
    assert float(bound) == pytest.approx(0.5 * np.linalg.eigvalsh(hessian)[-1] * float(delta @ delta),
                                         rel=1e-9)


def test_quadratic_forgetting_works_on_pytrees_and_refuses_other_structures():
    loss = lambda p: jnp.sum(p["a"] ** 2) + 2 * jnp.sum(p["b"] ** 2)  # noqa: E731
    params_a = {"a": jnp.zeros(2), "b": jnp.zeros(3)}
    params_b = {"a": jnp.ones(2), "b": jnp.ones(3)}
    assert float(st.measure.quadratic_forgetting(loss, params_a, params_b)) == pytest.approx(8.0)
    with pytest.raises(ConfigError, match="params_b"):
        st.measure.quadratic_forgetting(loss, params_a, {"a": jnp.ones(2), "b": jnp.ones(4)})


def test_a_cubic_term_separates_the_prediction_from_the_forgetting():
    loss = lambda w: 0.5 * jnp.sum(w ** 2) + jnp.sum(w ** 3)  # noqa: E731
    w_a, w_b = jnp.zeros(2), jnp.full(2, 0.1)
    assert float(st.measure.exact_forgetting(loss, w_a, w_b)) == pytest.approx(0.01 + 0.002)
    assert float(st.measure.quadratic_forgetting(loss, w_a, w_b)) == pytest.approx(0.01)


def grid_means(matrix, radius, points, centre_gradient=None):
    axis = np.linspace(-radius, radius, points)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    z = np.stack([a.ravel(), b.ravel()], axis=-1)
    g = z @ matrix.T + (0 if centre_gradient is None else centre_gradient)
    return {"SC": 0.5 * np.trace(matrix), "AG": np.mean(np.linalg.norm(g, axis=-1)),
            "MAG": np.mean(0.5 * np.abs(g).sum(-1))}


@settings(max_examples=6)
@given(seed=hs.integers(0, 10_000), radius=hs.sampled_from([0.5, 2.0]))
def test_surface_flatness_on_quadratics_of_known_curvature(seed, radius):
    hessian, minimum, loss = quadratic_task(seed)
    key = jax.random.key(seed)
    measures = st.measure.surface_flatness(loss, minimum, key, radius=radius, points=7,
                                           normalization="unit")
    d1, d2 = st.measure.random_directions(minimum, key, normalization="unit")
    directions = np.stack([np.asarray(d1), np.asarray(d2)], axis=1)
    np.testing.assert_allclose(directions.T @ directions, np.eye(2), atol=1e-12)
    expected = grid_means(directions.T @ np.asarray(hessian) @ directions, radius, 7)
    for name in ("SC", "AG", "MAG"):
        assert float(measures[name]) == pytest.approx(expected[name], rel=1e-9), name


def test_surface_flatness_scales_with_curvature_and_sees_a_gradient():
    loss = lambda w: 0.5 * jnp.sum(w ** 2)  # noqa: E731
    sharper = lambda w: 2.0 * jnp.sum(w ** 2)  # noqa: E731  (4x the curvature)
    centre, key = jnp.zeros(4), jax.random.key(0)
    flat = st.measure.surface_flatness(loss, centre, key, normalization="unit")
    sharp = st.measure.surface_flatness(sharper, centre, key, normalization="unit")
    for name in ("SC", "AG", "MAG"):
        assert float(sharp[name]) == pytest.approx(4 * float(flat[name]), rel=1e-12)
    assert float(flat["SC"]) == pytest.approx(1.0, rel=1e-12)  # unit curvature in both directions
    # Off the minimum: the surface's gradient at the centre is D^T w.
    shifted = jnp.arange(4.0)
    d1, d2 = st.measure.random_directions(shifted, key, normalization="unit")
    directions = np.stack([np.asarray(d1), np.asarray(d2)], axis=1)
    expected = grid_means(np.eye(2), 1.0, 11, directions.T @ np.asarray(shifted))
    measured = st.measure.surface_flatness(loss, shifted, key, normalization="unit")
    assert float(measured["AG"]) == pytest.approx(expected["AG"], rel=1e-9)
    assert float(measured["MAG"]) == pytest.approx(expected["MAG"], rel=1e-9)


def test_layer_normalized_directions_and_the_surface_grid():
    params = {"a": jnp.array([3.0, 4.0]), "b": jnp.ones((2, 2))}
    d1, d2 = st.measure.random_directions(params, jax.random.key(1))
    for d in (d1, d2):
        assert float(jnp.linalg.norm(d["a"])) == pytest.approx(5.0)
        assert float(jnp.linalg.norm(d["b"])) == pytest.approx(2.0)
    loss = lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 2)  # noqa: E731
    a, b, values = st.measure.loss_surface(loss, params, jax.random.key(1), radius=0.5, points=3)
    assert values.shape == (3, 3) and float(values[1, 1]) == pytest.approx(float(loss(params)))
    with pytest.raises(ConfigError, match="normalization"):
        st.measure.random_directions(params, jax.random.key(1), normalization="filter")
    with pytest.raises(ConfigError, match="radius"):
        st.measure.surface_flatness(loss, params, jax.random.key(1), radius=-1.0)
