"""Measures for factorized low-rank problems with parameters ``{"x": L (d1, k), "y": R (d2, k)}``.

The scaled trace of the Hessian (Ding, Drusvyatskiy, Fazel, Harchaoui 2022, Sec. 3) weighs the two
diagonal blocks of the Hessian by the sizes of the matrix::

    str(L, R) = (1/d1) · tr ∇²_LL f + (1/d2) · tr ∇²_RR f.

It comes three ways here:

- :func:`scaled_hessian_trace`: from the exact dense Hessian (autodiff; the oracle; O(n²) memory
  and n Hessian-vector products for n = k (d1 + d2) parameters);
- :func:`scaled_hessian_trace_closed_form`: ``2(‖D1 L‖²_F + ‖D2 R‖²_F)`` for the sensing loss
  ``(1/m)‖𝒜(L Rᵀ) − b‖²``. It is exact at *every* point, not only at solutions: f is quadratic in
  L for fixed R (and in R for fixed L), so the residual term of the Hessian lives only in the
  off-diagonal LR block and never reaches the trace of the diagonal blocks;
- :func:`scaled_hessian_trace_hutchinson`: an unbiased block-wise Hutchinson estimate from
  Rademacher probes and Hessian-vector products, for any loss on (L, R) (no dense Hessian, O(n)
  memory per probe).

The observables (``fn(params, problem)``) at the end are what labs pass to ``st.run``/``st.sweep``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import ConfigError, check_int
from .dense_hessian import hessian, hessian_vector_product


def _factors(params):
    if not (isinstance(params, dict) and "x" in params and "y" in params):
        raise ConfigError("params", type(params).__name__, "a dict {'x': L (d1, k), 'y': R (d2, k)}")
    left, right = params["x"], params["y"]
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[1]:
        raise ConfigError("params", (left.shape, right.shape), "L (d1, k) and R (d2, k)")
    return left, right


def _block_scales(params):
    """The weights ``1/d1`` on every entry of L and ``1/d2`` on every entry of R, as a pytree."""
    left, right = _factors(params)
    return {"x": jnp.full(left.shape, 1.0 / left.shape[0], left.dtype),
            "y": jnp.full(right.shape, 1.0 / right.shape[0], right.dtype)}


def scaled_hessian_trace(fn, params):
    """``str = (1/d1) tr ∇²_LL fn + (1/d2) tr ∇²_RR fn`` from the exact dense Hessian.

    Args:
      fn: ``fn(params) -> scalar`` (e.g. ``lambda p: problem.loss(p, problem.examples)``).
      params: ``{"x": L (d1, k), "y": R (d2, k)}`` (float64 for exact checks).

    Returns:
      The scaled trace (a scalar).

    References: Ding et al. 2022, Sec. 3 (definition of the scaled trace).
    """
    scales = _block_scales(params)
    diagonal = jnp.diagonal(hessian(fn, params))
    # ravel_pytree orders leaves as jax.tree_util does ("x" before "y"), same for the scales.
    flat_scales = jnp.concatenate([leaf.ravel() for leaf in jax.tree_util.tree_leaves(scales)])
    return jnp.sum(flat_scales * diagonal)


def scaled_hessian_trace_closed_form(params, D1_squared, D2_squared):
    """``str(L, R) = 2(‖D1 L‖²_F + ‖D2 R‖²_F) = 2(tr Lᵀ D1² L + tr Rᵀ D2² R)``.

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.
      D1_squared: the (d1, d1) weight of :func:`sharp_theory.problems.low_rank.sensing_weights`
        (``problem.constants["D1_squared"]``).
      D2_squared: the (d2, d2) weight (``problem.constants["D2_squared"]``).

    Returns:
      The scaled trace of the Hessian of ``(1/m)‖𝒜(L Rᵀ) − b‖²`` at (L, R), exact everywhere.

    References: Ding et al. 2022, Sec. 3; derived here (module docstring) and tested against
    :func:`scaled_hessian_trace`.
    """
    left, right = _factors(params)
    return 2.0 * (jnp.sum(left * (D1_squared @ left)) + jnp.sum(right * (D2_squared @ right)))


def scaled_hessian_trace_hutchinson(fn, params, key, probes: int = 64):
    """Block-wise Hutchinson estimate of the scaled trace from ``probes`` Rademacher probes.

    ``(1/d1) tr ∇²_LL fn = (1/d1) E_v[vᵀ ∇²_LL fn v]`` with v Rademacher on the entries of L (zero
    on R), and the same for R; one probe costs two Hessian-vector products (forward-over-reverse),
    so the cost is ``2 · probes`` gradient-like passes and O(n) memory, against n passes and O(n²)
    memory for the dense Hessian. Unbiased. Probing one block at a time keeps the off-diagonal
    LR block out of the variance: away from solutions that block carries the residuals and can be
    far larger than the diagonal blocks. The variance of one probe of a block H is
    ``2 Σ_{i≠j} H_ij²``.

    Args:
      fn: ``fn(params) -> scalar``.
      params: ``{"x": L, "y": R}``.
      key: a JAX PRNG key.
      probes: number of probes per block (>= 1), evaluated in one vmapped call.

    Returns:
      The estimate (a scalar).

    References: Hutchinson 1990 (trace estimator); Ding et al. 2022, Sec. 3 (scaled trace).
    """
    probes = check_int("probes", probes, minimum=1)
    left, right = _factors(params)
    key_x, key_y = jax.random.split(key)

    def block_trace(name, block, block_key):
        signs = jax.random.rademacher(block_key, (probes,) + block.shape, dtype=block.dtype)

        def one_probe(sign):
            vector = {"x": jnp.zeros_like(left), "y": jnp.zeros_like(right)}
            vector[name] = sign
            product = hessian_vector_product(fn, params, vector)
            return jnp.vdot(sign, product[name])

        return jnp.mean(jax.vmap(one_probe)(signs)) / block.shape[0]

    return block_trace("x", left, key_x) + block_trace("y", right, key_y)


def factor_balancedness_gap(params):
    """The balancedness gap ``‖LᵀL − RᵀR‖_F`` of a factorization (0 exactly when balanced).

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.

    Returns:
      A scalar array ≥ 0.

    Raises:
      ConfigError: ``params`` is not such a dict of two 2-D factors with k columns each.

    References:
      Ding, Drusvyatskiy, Fazel, Harchaoui 2022, Thm 3.3 (flat minima are nearly balanced);
      Li, Zhang, He 2024 use the scalar ``½(‖L‖² − ‖R‖²)`` (``st.measure.balancedness``), half
      the trace of ``LᵀL − RᵀR``.
    """
    left, right = _factors(params)
    return jnp.linalg.norm(left.T @ left - right.T @ right)


def product_nuclear_norm(params):
    """The nuclear norm ``‖L Rᵀ‖_*`` (sum of the singular values of the product).

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.

    Returns:
      A scalar array ≥ 0.

    Raises:
      ConfigError: malformed ``params`` (see :func:`factor_balancedness_gap`).
    """
    left, right = _factors(params)
    return jnp.sum(jnp.linalg.svd(left @ right.T, compute_uv=False))


def norm_minimality_gap(params):
    """The norm-minimality gap ``½(‖L‖²_F + ‖R‖²_F) − ‖L Rᵀ‖_*`` (≥ 0; 0 exactly at norm-minimal
    factorizations).

    ``min {½(‖L‖² + ‖R‖²) : L Rᵀ = X} = ‖X‖_*``, so this is how far (L, R) is from the smallest
    factorization of its own product.

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.

    Returns:
      A scalar array (≥ 0 up to rounding).

    Raises:
      ConfigError: malformed ``params`` (see :func:`factor_balancedness_gap`).

    References:
      Srebro, Rennie, Jaakkola 2005 (the variational form of the nuclear norm); Ding,
      Drusvyatskiy, Fazel, Harchaoui 2022, Thm 3.3 (flat minima are nearly norm-minimal).
    """
    left, right = _factors(params)
    return 0.5 * (jnp.sum(left**2) + jnp.sum(right**2)) - product_nuclear_norm(params)


# --- observables fn(params, problem) for st.run / st.sweep on st.problems.matrix_sensing -------

def sensing_scaled_trace(params, problem):
    """Observable: the closed-form scaled Hessian trace with the problem's weights (cheap, exact).

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.
      problem: a ``st.problems.matrix_sensing`` problem (its ``D1_squared``, ``D2_squared``).

    Returns:
      A scalar array: :func:`scaled_hessian_trace_closed_form` at ``params``.

    References:
      Ding, Drusvyatskiy, Fazel, Harchaoui 2022, Sec. 3.
    """
    return scaled_hessian_trace_closed_form(params, problem.constants["D1_squared"],
                                            problem.constants["D2_squared"])


def _dense_sensing_scaled_trace(params, problem):
    return scaled_hessian_trace(lambda p: problem.loss(p, problem.examples), params)


_dense_sensing_scaled_trace_jit = jax.jit(_dense_sensing_scaled_trace)


def sensing_scaled_trace_dense(params, problem):
    """Observable: the scaled trace from the dense Hessian of the full-data loss (the oracle).

    Compiled once per shape (the problem is a pytree), so repeated calls on new instances of the
    same shapes are cheap; inside ``st.run`` it is traced into the run as any observable.

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.
      problem: a ``st.problems.matrix_sensing`` problem (its loss on ``problem.examples``).

    Returns:
      A scalar array: :func:`scaled_hessian_trace` of the full-data loss.
    """
    return _dense_sensing_scaled_trace_jit(params, problem)


def recovery_error(params, problem):
    """Observable: the recovery error ``‖L Rᵀ − M‖_F`` with M the problem's ground truth.

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.
      problem: a ``st.problems.matrix_sensing`` problem (``constants["ground_truth"]``).

    Returns:
      A scalar array ≥ 0 (absolute, not relative).
    """
    left, right = _factors(params)
    return jnp.linalg.norm(left @ right.T - problem.constants["ground_truth"])


def training_loss(params, problem):
    """Observable: the full-data loss ``(1/m)‖𝒜(L Rᵀ) − b‖²``.

    Args:
      params: ``{"x": L (d1, k), "y": R (d2, k)}``.
      problem: a ``st.problems.matrix_sensing`` problem.

    Returns:
      A scalar array: ``problem.loss(params, problem.examples)``.
    """
    return problem.loss(params, problem.examples)
