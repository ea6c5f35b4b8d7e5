"""The one signature of an observable: ``fn(params, problem, state) -> array``.

An observable is recorded along a run (``st.run(..., observe={"name": fn})``) every ``stride``
steps. It is always called the same way, with

- ``params``: the current parameters;
- ``problem``: the run's :class:`sharp_theory.problems.Problem` (this lane's constants in a
  sweep);
- ``state``: a :class:`RunState` with the optimizer's hyperparameters (this lane's values in a
  sweep: an observable reads SAM's ρ here), the optimizer's state and the step index.

An observable that needs its own state from one record to the next (an eigensolver restarted
from the previous record's eigenvectors) subclasses :class:`WarmObservable`: ``init`` makes its
carry at the initial point, ``update`` returns ``(value, new carry)`` at every record, and the
trajectory scan carries it. A value may be a dict of arrays, recorded as ``NAME.KEY``.

Nothing inspects a function's signature. A function of fewer arguments is adapted explicitly:
:func:`of_params` (``fn(params)``) or :func:`of_params_and_problem` (``fn(params, problem)``).
The adapters compare by the function they wrap, so the same function gives the same compiled
program.

Ready observables, one import away: :func:`loss` (the default, kept when ``observe=`` names
others), :func:`lambda_max`, :func:`hessian_trace`, :func:`param_norm`, :func:`grad_norm`::

    st.run(problem, opt, steps=300, key=key, stride=30,
           observe={"lambda_max": st.observables.lambda_max})  # records "loss" and "lambda_max"

Part of the lowest layer: problems and measures declare their observables with these adapters.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

__all__ = ["loss", "lambda_max", "hessian_trace", "param_norm", "grad_norm", "DENSE_LIMIT",
           "of_params", "of_params_and_problem", "all_of_params", "all_of_params_and_problem",
           "RunState", "WarmObservable", "ParamsObservable", "ParamsAndProblemObservable"]


@dataclasses.dataclass(frozen=True)
class RunState:
    """What an observable sees besides the parameters and the problem.

    Attributes:
      hparams: dict name -> array, the optimizer's hyperparameters in this run.
      optimizer_state: the rule's state (momentum buffers, a weight average, a learned radius).
      step: the index of the step whose result is recorded (0 for the initial point).
    """

    hparams: Mapping[str, Any]
    optimizer_state: Any
    step: Any


@dataclasses.dataclass(frozen=True)
class ParamsObservable:
    """``fn(params)`` as an observable (see :func:`of_params`); compares by ``fn``.

    Attributes:
      fn: the wrapped function of the parameters alone.
    """

    fn: Callable

    def __call__(self, params, problem, state):
        return self.fn(params)


@dataclasses.dataclass(frozen=True)
class ParamsAndProblemObservable:
    """``fn(params, problem)`` as an observable (see :func:`of_params_and_problem`); compares by
    ``fn``.

    Attributes:
      fn: the wrapped function of the parameters and the problem.
    """

    fn: Callable

    def __call__(self, params, problem, state):
        return self.fn(params, problem)


class WarmObservable:
    """An observable with a carry: state handed from one record to the next (warm starts).

    Subclasses (frozen dataclasses, so that equal settings compile once) implement ``init`` and
    ``update``; called like any observable, it computes one record from a cold start.
    """

    def init(self, params, problem, state):
        """The carry at the initial point (e.g. eigenvectors from a cold solve)."""
        raise NotImplementedError

    def update(self, params, problem, state, carry):
        """``(value, new carry)`` at a record, starting from the previous record's carry."""
        raise NotImplementedError

    def __call__(self, params, problem, state):
        # One compiled program for the cold record. Run op by op, an iterative solver compiles
        # every small operation of every iteration on its own (hundreds of programs, ~40 s for a
        # 60-parameter Lanczos on 2 cores, and ~3 memory maps each that a process keeps).
        if state is None:  # a direct call: the program is cached per observable and shapes
            return _cold_record_program()(self, params, problem)

        def cold_record(params):
            return self.update(params, problem, state, self.init(params, problem, state))[0]

        import jax  # here, not at the top: this module is the lowest layer and imports no JAX

        return jax.jit(cold_record)(params)


_COLD_RECORD = []


def _cold_record(observable, params, problem):
    return observable.update(params, problem, None, observable.init(params, problem, None))[0]


def _cold_record_program():
    """``jax.jit(_cold_record)`` with the observable static (a frozen dataclass, so equal settings
    share the program), made at the first use (this module imports no JAX at the top)."""
    if not _COLD_RECORD:
        import jax

        _COLD_RECORD.append(jax.jit(_cold_record, static_argnums=0))
    return _COLD_RECORD[0]


def of_params(fn: Callable) -> ParamsObservable:
    """Adapt ``fn(params)`` to the observable signature ``(params, problem, state)``.

    Args:
      fn: a function of the parameters alone (``st.measure.balancedness``, a norm, ...).

    Returns:
      A :class:`ParamsObservable` that ignores the problem and the run state; two adapters of
      the same ``fn`` compare equal (so a run reuses its compiled program).

    Examples:
      >>> import jax.numpy as jnp
      >>> import sharp_theory as st
      >>> observe_b = st.observables.of_params(st.measure.balancedness)
      >>> params = {"x": jnp.array([2.0]), "y": jnp.array([1.0])}
      >>> float(observe_b(params, None, None))  # problem and state are ignored
      1.5
      >>> observe_b == st.observables.of_params(st.measure.balancedness)
      True
    """
    return ParamsObservable(fn)


def of_params_and_problem(fn: Callable) -> ParamsAndProblemObservable:
    """Adapt ``fn(params, problem)`` to the observable signature ``(params, problem, state)``.

    Args:
      fn: a function of the parameters and the problem (a loss, a test error, ...).

    Returns:
      An observable that ignores the run state.
    """
    return ParamsAndProblemObservable(fn)


def all_of_params(observe: Mapping[str, Callable]) -> dict:
    """:func:`of_params` applied to every value of an ``observe`` mapping.

    Args:
      observe: dict name -> ``fn(params)``.

    Returns:
      dict name -> :class:`ParamsObservable`, in the same order.
    """
    return {name: of_params(fn) for name, fn in observe.items()}


def all_of_params_and_problem(observe: Mapping[str, Callable]) -> dict:
    """:func:`of_params_and_problem` applied to every value of an ``observe`` mapping.

    Args:
      observe: dict name -> ``fn(params, problem)``.

    Returns:
      dict name -> :class:`ParamsAndProblemObservable`, in the same order.
    """
    return {name: of_params_and_problem(fn) for name, fn in observe.items()}


# --- ready observables ------------------------------------------------------------------------
# Each is a module-level function ``fn(params, problem, state)``, so ``observe={"lam":
# st.observables.lambda_max}`` needs no adapter and compiles once. They use JAX alone (this
# module is the lowest layer); the measures in ``st.measure`` give more options.

DENSE_LIMIT = 300
"""Parameters up to which :func:`lambda_max` and :func:`hessian_trace` build the dense Hessian;
above it they work from Hessian-vector products (Lanczos; n unit-vector products for the trace),
never storing the Hessian. The crossover ``st.measure`` uses too (``benchmarks/bench_spectrum.py``:
dense is faster below ~200 parameters, Lanczos 8x faster at 500)."""


def loss(params, problem, state=None):
    """The problem's reporting loss: closed-form population loss, else the full-data loss.

    The default observable (kept as "loss" whenever ``observe=`` is given without one).

    Args:
      params: the parameters.
      problem: the run's problem.
      state: the :class:`RunState` (unused).

    Returns:
      A scalar.
    """
    return problem.evaluation_loss(params)


def lambda_max(params, problem, state=None):
    """The sharpness λ_max: the largest eigenvalue of the full-batch training loss's Hessian.

    Exact up to :data:`DENSE_LIMIT` parameters: the dense Hessian, reduced to tridiagonal form,
    and bisection for its top eigenvalue alone (no eigenvectors: ~19x faster than
    ``jnp.linalg.eigvalsh`` on a batch of 210-parameter Hessians, equal to round-off); above it, 80
    steps of Lanczos with full reorthogonalization on Hessian-vector products (the Hessian is
    never stored; ~1e-10 relative on the spectra of this package's tests, which compare it with
    dense ``eigh``). For a long run of a large model, ``st.measure.warm_top_eigenpairs(1)``
    restarts Lanczos from the previous record and needs fewer steps.

    Args:
      params: the parameters.
      problem: the run's problem.
      state: the :class:`RunState` (unused).

    Returns:
      A scalar: the algebraically largest Hessian eigenvalue.

    References:
      Cohen et al. 2021 (λ_max and the edge of stability 2/η); Foret et al. 2021 (sharpness).
    """
    from .krylov import (FullBatchLoss, dense_hessian, dense_top_eigenvalue, hessian_operator,
                         parameter_count, top_eigenvalue)

    if parameter_count(params) <= DENSE_LIMIT:
        return dense_top_eigenvalue(dense_hessian(FullBatchLoss(problem), params)[0])
    matvec, flat, _ = hessian_operator(FullBatchLoss(problem), params)
    return top_eigenvalue(matvec, flat.size, flat.dtype)


def hessian_trace(params, problem, state=None):
    """The trace of the full-batch training loss's Hessian, exactly: the dense Hessian's up to
    :data:`DENSE_LIMIT` parameters, else the sum of the n unit-vector Hessian products (no
    sampling; memory O(n)).

    Args:
      params: the parameters.
      problem: the run's problem.
      state: the :class:`RunState` (unused).

    Returns:
      A scalar: tr ∇²L(params).

    References:
      Wen, Ma, Li 2023 (SAM's implicit bias toward a small Hessian trace).
    """
    import jax.numpy as jnp

    from .krylov import FullBatchLoss, dense_hessian, exact_trace, hessian_operator, parameter_count

    if parameter_count(params) <= DENSE_LIMIT:
        return jnp.trace(dense_hessian(FullBatchLoss(problem), params)[0])
    matvec, flat, _ = hessian_operator(FullBatchLoss(problem), params)
    return exact_trace(matvec, flat.size, flat.dtype)


def param_norm(params, problem=None, state=None):
    """The Euclidean norm of all parameters, ‖w‖₂ (every leaf together).

    Args:
      params: the parameters.
      problem: unused.
      state: unused.

    Returns:
      A scalar.
    """
    import jax
    import jax.numpy as jnp

    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(params)))


def grad_norm(params, problem, state=None):
    """The norm of the full-batch training loss's gradient, ‖∇L(w)‖₂.

    Args:
      params: the parameters.
      problem: the run's problem.
      state: unused.

    Returns:
      A scalar.
    """
    import jax

    from .krylov import FullBatchLoss

    return param_norm(jax.grad(FullBatchLoss(problem))(params))
