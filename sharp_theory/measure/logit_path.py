"""The loss Hessian split into a logit path and a functional path, and sharpness that ignores the
logit statistics.

For a loss ``L(w) = ℓ(F(w))`` of a model's outputs F (logits), the chain rule splits the Hessian
exactly:

    ∇²L = J_Fᵀ ∇²ℓ J_F  +  Σ_i (∂ℓ/∂F_i) ∇²F_i
          (Gauss-Newton: the logit path)   (the functional path)

and, to first order in ρ, SAM's gradient ``∇L(w + ε) ≈ ∇L + ρ ∇²L ĝ`` splits the same way. The
exact split of SAM's update needs no expansion: with ``F⁺ = F(w + ε)``,

    SAM:             J(w+ε)ᵀ ∇ℓ(F⁺)
    Functional-SAM:  J(w+ε)ᵀ ∇ℓ(F(w))          (functional path: FSAM − ∇L)
    logit path:      J(w+ε)ᵀ (∇ℓ(F⁺) − ∇ℓ(F(w)))   (SAM − FSAM)

For a softmax cross-entropy ``∇²ℓ = diag(p) − ppᵀ`` per context: the logit path's curvature
shrinks when the softmax becomes confident (p near one-hot), whatever the function's geometry.
That is the "spurious" route to low sharpness (Singh et al. 2025). Two sharpness measures that
the route cannot lower are offered here:

- the functional part alone (its λ_max and trace), and
- the **calibration-matched** sharpness: the Hessian of ``w ↦ ℓ(β* F(w))`` with the single
  inverse temperature β* refitted at w to minimize ``ℓ(β F(w))`` (:func:`calibration_temperature`).
  Rescaling the logits' confidence is undone by β*, so two solutions that differ only by their
  logit temperature have the same calibration-matched curvature of the logit path.

Everything works for any problem that declares its outputs (``Problem.outputs`` and
``Problem.loss_of_outputs``); the Hessians are of the training loss on ``batch`` (default: the
full batch). Dense matrices are for small parameter counts (the exact references of the tests);
:func:`path_sharpness` is matrix-free except for exact traces, which cost one product per
parameter.

References:
  Singh, Mobahi, Agarwala, Dauphin. Avoiding spurious sharpness minimization broadens
  applicability of SAM. arXiv 2502.02407 (2025), Sec. 3-4 (logit and functional paths).
  Martens. New insights and perspectives on the natural gradient method. JMLR 2020 (the
  Gauss-Newton decomposition).
  Guo, Pleiss, Sun, Weinberger. On calibration of modern neural networks. ICML 2017
  (temperature scaling).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError, check_int, check_nonnegative
from ..krylov import exact_trace
from .spectrum import lanczos, tridiagonal

_MISSING = object()


def _require_outputs(problem):
    if not getattr(problem, "has_outputs", False):
        raise ConfigError("problem", getattr(problem, "name", problem),
                          "a problem that declares outputs_fn and loss_of_outputs_fn")


def _batch(problem, batch):
    return problem.full_batch() if batch is _MISSING else batch


def gauss_newton_product(problem, params, vector, batch=_MISSING):
    """The logit path's curvature times a vector: ``J_Fᵀ ∇²ℓ(F) J_F v`` (a pytree like params).

    Args:
      problem: a problem that declares its outputs (``outputs_fn`` and ``loss_of_outputs_fn``).
      params: the point w (a pytree).
      vector: the direction v (a pytree with the structure of ``params``).
      batch: the batch (default the full batch).

    Returns:
      ``J_Fᵀ ∇²ℓ(F) J_F v``, a pytree like ``params``.

    References:
      Singh, Mobahi, Agarwala, Dauphin (2025), the Gauss-Newton ("logit path") term of the
      Hessian split.
    """
    _require_outputs(problem)
    batch = _batch(problem, batch)
    outputs_of = lambda p: problem.outputs(p, batch)  # noqa: E731
    outputs, output_tangent = jax.jvp(outputs_of, (params,), (vector,))
    loss_gradient = jax.grad(lambda o: problem.loss_of_outputs(o, batch))
    curved = jax.jvp(loss_gradient, (outputs,), (output_tangent,))[1]
    _, pullback = jax.vjp(outputs_of, params)
    return pullback(curved)[0]


def functional_product(problem, params, vector, batch=_MISSING):
    """The functional path's curvature times a vector: ``Σ_i (∂ℓ/∂F_i) ∇²F_i v``.

    Computed as the Hessian-vector product of ``w' ↦ ⟨∇ℓ(F(w)), F(w')⟩`` with the loss
    derivative held at w (not as a difference), so the split's exactness is a real test.

    Args:
      problem: a problem that declares its outputs (``outputs_fn`` and ``loss_of_outputs_fn``).
      params: the point w (a pytree).
      vector: the direction v (a pytree with the structure of ``params``).
      batch: the batch (default the full batch).

    Returns:
      ``Σ_i (∂ℓ/∂F_i) ∇²F_i v``, a pytree like ``params``.

    References:
      Singh, Mobahi, Agarwala, Dauphin (2025), the functional term of the Hessian split.
    """
    _require_outputs(problem)
    batch = _batch(problem, batch)
    outputs_of = lambda p: problem.outputs(p, batch)  # noqa: E731
    output_gradient = jax.grad(lambda o: problem.loss_of_outputs(o, batch))(outputs_of(params))
    output_gradient = jax.lax.stop_gradient(output_gradient)
    linear_in_outputs = lambda p: jnp.vdot(output_gradient, outputs_of(p))  # noqa: E731
    return jax.jvp(jax.grad(linear_in_outputs), (params,), (vector,))[1]


def hessian_product(problem, params, vector, batch=_MISSING, inverse_temperature=None):
    """``∇²L v`` of the training loss, or with ``inverse_temperature=β`` of ``w ↦ ℓ(β F(w))``.

    Args:
      problem: a problem that declares its outputs (``outputs_fn`` and ``loss_of_outputs_fn``).
      params: the point w (a pytree).
      vector: the direction v (a pytree with the structure of ``params``).
      batch: the batch (default the full batch).
      inverse_temperature: None for the loss itself, or β > 0 to rescale the logits first
        (the calibration-matched sharpness; β is held constant, not differentiated).

    Returns:
      The Hessian-vector product, a pytree like ``params``.
    """
    _require_outputs(problem)
    batch = _batch(problem, batch)
    if inverse_temperature is None:
        fn = lambda p: problem.loss_of_outputs(problem.outputs(p, batch), batch)  # noqa: E731
    else:
        beta = jax.lax.stop_gradient(inverse_temperature)
        fn = lambda p: problem.loss_of_outputs(beta * problem.outputs(p, batch), batch)  # noqa: E731
    return jax.jvp(jax.grad(fn), (params,), (vector,))[1]


class HessianSplit(NamedTuple):
    """Dense matrices (n x n over the flattened parameters) with ``full = gauss_newton + functional``.

    Attributes:
      full: the loss Hessian (``jax.hessian``, symmetrized).
      gauss_newton: ``J_Fᵀ ∇²ℓ J_F`` (positive semi-definite for a convex ℓ).
      functional: ``Σ_i (∂ℓ/∂F_i) ∇²F_i``.
    """

    full: Any
    gauss_newton: Any
    functional: Any


def _flat_operator(product, params):
    flat, unravel = ravel_pytree(params)
    return (lambda v: ravel_pytree(product(unravel(v)))[0]), flat


def _dense(matvec, n, dtype):
    matrix = jax.vmap(matvec)(jnp.eye(n, dtype=dtype))
    return 0.5 * (matrix + matrix.T)


def hessian_split(problem, params, batch=_MISSING) -> HessianSplit:
    """The exact split of the loss Hessian into its logit and functional paths, as dense matrices.

    Args:
      problem: a problem that declares its outputs (e.g. ``st.problems.softmax_bigram``).
      params: a parameter pytree (float64 for exact checks; dense: up to a few thousand entries).
      batch: the batch (default: the problem's full batch).

    Returns:
      :class:`HessianSplit`. The three matrices are computed independently (the full Hessian by
      ``jax.hessian`` of the composed loss), so ``full − gauss_newton − functional`` is a check.
    """
    _require_outputs(problem)
    batch = _batch(problem, batch)
    flat, unravel = ravel_pytree(params)
    full = jax.hessian(lambda w: problem.loss_of_outputs(problem.outputs(unravel(w), batch), batch))(flat)
    gn, _ = _flat_operator(lambda v: gauss_newton_product(problem, params, v, batch), params)
    fp, _ = _flat_operator(lambda v: functional_product(problem, params, v, batch), params)
    n = flat.size
    return HessianSplit(0.5 * (full + full.T), _dense(gn, n, flat.dtype), _dense(fp, n, flat.dtype))


class SamUpdateSplit(NamedTuple):
    """SAM's gradient split by path (pytrees like params).

    Attributes:
      gradient: ``∇L(w)``.
      logit_path: exact, ``SAM − Functional-SAM`` gradients at radius ρ.
      functional_path: exact, ``Functional-SAM − ∇L``.
      logit_path_linear: first order in ρ, ``ρ J_Fᵀ∇²ℓ J_F ĝ``.
      functional_path_linear: first order in ρ, ``ρ Σ_i (∂ℓ/∂F_i) ∇²F_i ĝ``.
    """

    gradient: Any
    logit_path: Any
    functional_path: Any
    logit_path_linear: Any
    functional_path_linear: Any


def sam_update_split(problem, params, rho, batch=_MISSING) -> SamUpdateSplit:
    """The part of SAM's update that goes through each path, exactly and to first order in ρ.

    Args:
      problem: a problem with outputs.
      params: parameters.
      rho: SAM's radius (>= 0), ascent ``ε = ρ ∇L/‖∇L‖``.
      batch: the batch (default the full batch).

    Returns:
      :class:`SamUpdateSplit`; ``gradient + logit_path + functional_path`` is SAM's gradient.
    """
    _require_outputs(problem)
    if not isinstance(rho, jax.Array):
        check_nonnegative("rho", rho)
    batch = _batch(problem, batch)
    outputs_of = lambda p: problem.outputs(p, batch)  # noqa: E731
    loss_gradient = jax.grad(lambda o: problem.loss_of_outputs(o, batch))
    outputs, pullback = jax.vjp(outputs_of, params)
    output_gradient = loss_gradient(outputs)
    (gradient,) = pullback(output_gradient)
    flat_gradient, unravel = ravel_pytree(gradient)
    norm = jnp.linalg.norm(flat_gradient)
    unit = unravel(flat_gradient / jnp.where(norm > 0, norm, 1.0))
    perturbed = jax.tree_util.tree_map(lambda w, u: w + rho * u, params, unit)
    perturbed_outputs, perturbed_pullback = jax.vjp(outputs_of, perturbed)
    (sam,) = perturbed_pullback(loss_gradient(perturbed_outputs))
    (functional_sam,) = perturbed_pullback(output_gradient)
    sub = lambda a, b: jax.tree_util.tree_map(jnp.subtract, a, b)  # noqa: E731
    scale = lambda t: jax.tree_util.tree_map(lambda x: rho * x, t)  # noqa: E731
    return SamUpdateSplit(gradient, sub(sam, functional_sam), sub(functional_sam, gradient),
                          scale(gauss_newton_product(problem, params, unit, batch)),
                          scale(functional_product(problem, params, unit, batch)))


def logit_statistics(logits, weights=None) -> dict:
    """Statistics of softmax outputs that SAM can move without changing the function's shape.

    Args:
      logits: array (..., N, V): N rows (contexts) of V logits.
      weights: optional (N,) row weights summing to 1 (default uniform).

    Returns:
      dict of weighted means over rows: ``max_probability`` (confidence), ``entropy`` (nats),
      ``logit_norm`` (root mean square of the row-centred logits: a scale, i.e. an inverse
      temperature, of the logits).
    """
    logits = jnp.asarray(logits)
    n = logits.shape[-2]
    weights = jnp.full((n,), 1.0 / n, logits.dtype) if weights is None else jnp.asarray(weights)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(log_p)
    centred = logits - logits.mean(axis=-1, keepdims=True)
    mean = lambda rows: jnp.sum(weights * rows, axis=-1)  # noqa: E731
    return {"max_probability": mean(p.max(axis=-1)),
            "entropy": mean(-jnp.sum(p * log_p, axis=-1)),
            "logit_norm": jnp.sqrt(mean(jnp.mean(jnp.square(centred), axis=-1)))}


def calibration_temperature(problem, params, batch=_MISSING, *, iterations: int = 30):
    """The temperature T* = 1/β* that best fits the logits to the training loss: β* = argmin ℓ(βF).

    ``β ↦ ℓ(βF)`` is convex for a cross-entropy; damped Newton from β = 1 (β kept in
    [1e-3, 1e3]).

    Args:
      problem: a problem with outputs.
      params: parameters.
      batch: the batch (default the full batch).
      iterations: Newton steps (>= 1).

    Returns:
      T* (a scalar array; T* > 1 means the logits were over-confident for the training data).
    """
    _require_outputs(problem)
    iterations = check_int("iterations", iterations, minimum=1)
    batch = _batch(problem, batch)
    outputs = problem.outputs(params, batch)
    loss_at = lambda beta: problem.loss_of_outputs(beta * outputs, batch)  # noqa: E731
    slope, curvature = jax.grad(loss_at), jax.grad(jax.grad(loss_at))

    def newton(_, beta):
        step = slope(beta) / jnp.maximum(curvature(beta), 1e-12)
        return jnp.clip(beta - step, 1e-3, 1e3)

    beta = jax.lax.fori_loop(0, iterations, newton, jnp.asarray(1.0, outputs.dtype))
    return 1.0 / beta


def _top_eigenvalue(matvec, n, dtype, steps, key):
    start = jax.random.rademacher(jax.random.fold_in(key, 1), (n,), dtype=dtype)
    result = lanczos(matvec, start, steps, key=key)
    values, vectors = jnp.linalg.eigh(tridiagonal(result))
    return values[-1], result.basis.T @ vectors[:, -1]


def path_sharpness(problem, params, batch=_MISSING, *, lanczos_steps: int = 24, key=None,
                   trace: bool = True, chunk: int = 64) -> dict:
    """λ_max and trace of the loss Hessian, of each path, and calibration-matched.

    Args:
      problem: a problem with outputs.
      params: parameters (vmappable: every number is an array).
      batch: the batch (default the full batch).
      lanczos_steps: Lanczos iterations per λ_max (full reorthogonalization; <= parameter count).
      key: PRNG key of the Lanczos start vectors (default a fixed key).
      trace: also compute the exact traces (one product per parameter and matrix).
      chunk: products per vectorized batch of the traces.

    Returns:
      dict of scalars: ``lambda_max``, ``lambda_max_gauss_newton``, ``lambda_max_functional``
      (algebraically largest eigenvalue of each matrix), ``top_gauss_newton`` and
      ``top_functional`` (the Rayleigh quotients of the two parts at the full Hessian's top
      eigenvector: they add up to ``lambda_max``), ``temperature`` (T*),
      ``lambda_max_calibrated`` (of ``w ↦ ℓ(F(w)/T*)``), and with ``trace=True`` ``trace``,
      ``trace_gauss_newton``, ``trace_functional`` and ``trace_calibrated``.
    """
    _require_outputs(problem)
    batch = _batch(problem, batch)
    key = jax.random.key(0) if key is None else key
    flat, unravel = ravel_pytree(params)
    n, dtype = flat.size, flat.dtype
    steps = check_int("lanczos_steps", lanczos_steps, minimum=1, maximum=n)
    temperature = calibration_temperature(problem, params, batch)
    operators = {
        "": lambda v: hessian_product(problem, params, v, batch),
        "_gauss_newton": lambda v: gauss_newton_product(problem, params, v, batch),
        "_functional": lambda v: functional_product(problem, params, v, batch),
        "_calibrated": lambda v: hessian_product(problem, params, v, batch, 1.0 / temperature),
    }
    flat_ops = {name: _flat_operator(op, params)[0] for name, op in operators.items()}
    result = {"temperature": temperature}
    for index, (name, matvec) in enumerate(flat_ops.items()):
        value, vector = _top_eigenvalue(matvec, n, dtype, steps, jax.random.fold_in(key, index))
        result["lambda_max" + name] = value
        if name == "":
            result["top_gauss_newton"] = jnp.vdot(vector, flat_ops["_gauss_newton"](vector))
            result["top_functional"] = jnp.vdot(vector, flat_ops["_functional"](vector))
        if trace and name:
            result["trace" + name] = exact_trace(matvec, n, dtype, batch_size=chunk)
    if trace:  # the split is exact (tests/test_next_token.py), so the full trace is the sum
        result["trace"] = result["trace_gauss_newton"] + result["trace_functional"]
    return result


__all__ = ["gauss_newton_product", "functional_product", "hessian_product", "HessianSplit",
           "hessian_split", "SamUpdateSplit", "sam_update_split", "logit_statistics",
           "calibration_temperature", "path_sharpness"]
