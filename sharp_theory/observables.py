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

Part of the lowest layer: problems and measures declare their observables with these adapters.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping


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
        return self.update(params, problem, state, self.init(params, problem, state))[0]


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
