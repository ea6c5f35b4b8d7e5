"""The lowest layer's Hessian linear algebra (``sharp_theory.krylov``) against numpy's dense
``eigvalsh``: the top eigenvalue without eigenvectors, Lanczos's top eigenvalue and the exact
trace from unit-vector products."""
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hst

from sharp_theory import krylov

SIZES = (1, 2, 7, 40)  # a small set, so the compiled programs are reused across examples


@settings(max_examples=30, deadline=None)
@given(n=hst.sampled_from(SIZES), seed=hst.integers(0, 2**31 - 1),
       spread=hst.sampled_from((1e-3, 1.0, 1e3)), repeated_top=hst.booleans())
def test_dense_top_eigenvalue_equals_the_largest_of_eigvalsh(n, seed, spread, repeated_top):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigenvalues = spread * rng.standard_normal(n)
    if repeated_top and n > 1:  # a double top eigenvalue: bisection must still find it
        eigenvalues[np.argsort(eigenvalues)[-2]] = eigenvalues.max()
    matrix = (basis * eigenvalues) @ basis.T
    matrix = 0.5 * (matrix + matrix.T)
    expected = np.linalg.eigvalsh(matrix)[-1]
    got = float(jax.jit(krylov.dense_top_eigenvalue)(jnp.asarray(matrix)))
    scale = np.max(np.abs(eigenvalues))
    assert abs(got - expected) <= 1e-13 * scale, (got, expected)


def test_lanczos_top_eigenvalue_and_exact_trace_of_an_operator():
    rng = np.random.default_rng(3)
    n = 120
    basis, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigenvalues = np.linspace(-2.0, 5.0, n)
    matrix = jnp.asarray((basis * eigenvalues) @ basis.T)

    def matvec(v):
        return matrix @ v

    top = jax.jit(lambda: krylov.top_eigenvalue(matvec, n, jnp.float64))()
    np.testing.assert_allclose(top, 5.0, rtol=1e-10)
    trace = jax.jit(lambda: krylov.exact_trace(matvec, n, jnp.float64, batch_size=16))()
    np.testing.assert_allclose(trace, np.trace(np.asarray(matrix)), rtol=1e-12)
