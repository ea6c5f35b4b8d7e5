"""Trajectories: one ``lax.scan`` over steps, observables every ``stride`` steps.

References: DESIGN.md ("The optimizer contract", "Randomness and numerics").
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .._pytree import pytree_dataclass, static_field
from ..checkpoints import resumable
from ..errors import ConfigError, check_int
from ..observables import RunState, WarmObservable
from ..problems.base import Problem, init_key, optimizer_key
from ..optim.base import Optimizer
from ..tree import all_finite, tree_where
from .stall import wait_for

# A run whose recorded loss ends at least this many times its initial value is reported as a
# runaway (Trajectory.status), not "ok".
RUNAWAY_FACTOR = 1e4


@dataclasses.dataclass(frozen=True)
class Observable:
    """A named observable recorded along a trajectory, called as ``fn(params, problem, state)``.

    The signature is fixed (see :mod:`sharp_theory.observables`); functions of fewer arguments
    are adapted explicitly with :func:`sharp_theory.observables.of_params` or
    :func:`~sharp_theory.observables.of_params_and_problem`, never by reading their signature.

    Attributes:
      name: the key of the recorded values in ``Trajectory.observed``.
      fn: the function ``fn(params, problem, state) -> array``.
    """

    name: str
    fn: Callable

    def __call__(self, params, problem, state: RunState):
        try:
            return self.fn(params, problem, state)
        except TypeError as error:
            if "positional argument" not in str(error):
                raise
            raise ConfigError(f"observe[{self.name!r}]", getattr(self.fn, "__name__", self.fn),
                              "fn(params, problem, state); wrap fn(params) in "
                              "st.observables.of_params, fn(params, problem) in "
                              f"st.observables.of_params_and_problem ({error})") from None


def evaluation_loss(params, problem, state=None):
    """Default observable: the problem's reporting loss (population or full-data).

    Args:
      params: the parameters.
      problem: the run's problem.
      state: the :class:`RunState` (unused).

    Returns:
      A scalar: ``problem.evaluation_loss(params)``.
    """
    return problem.evaluation_loss(params)


def as_observables(observe: Mapping[str, Callable] | None) -> tuple[Observable, ...]:
    """Freeze an ``observe`` mapping into a hashable tuple of :class:`Observable` (so it can be a
    static argument of the compiled run).

    The loss is always recorded: ``{"loss": evaluation_loss}`` comes first unless ``observe``
    names its own "loss" (``"loss": None`` drops it).

    Args:
      observe: dict name -> ``fn(params, problem, state)``, or None for the default
        ``{"loss": evaluation_loss}``.

    Returns:
      A tuple of :class:`Observable`, "loss" first, then the mapping's order.

    Raises:
      ConfigError: ``observe`` is not a mapping or holds a value that is not callable.
    """
    if observe is None:
        observe = {}
    if not isinstance(observe, Mapping):
        raise ConfigError("observe", type(observe).__name__, "a dict name -> fn(params, problem, state)")
    if "loss" not in observe:
        observe = {"loss": evaluation_loss, **observe}
    out = []
    for name, fn in observe.items():
        if fn is None and name == "loss":
            continue
        if not callable(fn):
            raise ConfigError(f"observe[{name!r}]", fn, "a callable fn(params, problem, state)")
        out.append(Observable(str(name), fn))
    return tuple(out)


@pytree_dataclass
class Trajectory:
    """The result of :func:`run` (or one optimizer of a :func:`sweep`, with leading grid axes).

    Attributes:
      params: final parameters (the last finite iterate if the run diverged).
      observed: dict name -> array of shape (*grid, n_records, *value_shape): the observables at
        ``steps`` (``grid`` is empty for :func:`run`, the sweep axes for :func:`sweep`).
      steps: the step indices of the records (0 = initial point), a numpy int array.
      diverged_at: first step whose loss or new iterate was not finite, -1 if none.
      grad_evals: gradient evaluations (in batch passes) spent before divergence.
      hvp_evals: Hessian-vector products spent before divergence (the ``info["hvp_evals"]`` a
        step rule reports; 0 for rules that use none).
      state: the optimizer state after the last step (momentum buffers, Adam moments, a
        weight average, a learned radius: whatever the rule keeps).
      optimizer: the optimizer's name (``Optimizer.name``).
      problem: the problem's name (``Problem.name``).
      record_axis: the axis of ``observed`` arrays that runs over the records (0 for
        :func:`run`; for a sweep, the number of leading grid and seed axes).
    """

    params: Any
    observed: dict
    steps: Any
    diverged_at: Any
    grad_evals: Any
    state: Any = None
    hvp_evals: Any = None
    optimizer: str = static_field(default="")
    problem: str = static_field(default="")
    record_axis: int = static_field(default=0)

    def __repr__(self) -> str:
        """Names and shapes, not data."""
        observed = {name: tuple(np.shape(value)) for name, value in self.observed.items()}
        return (f"Trajectory(optimizer={self.optimizer!r}, problem={self.problem!r}, "
                f"records={len(np.asarray(self.steps))} (steps 0..{int(np.asarray(self.steps)[-1])}),"
                f" observed shapes={observed})")

    @property
    def status(self):
        """"ok", "diverged at step k: ...", or "runaway: ..." when the recorded loss ended at
        least :data:`RUNAWAY_FACTOR` times its initial value (an array of such strings for a
        sweep)."""
        diverged = np.asarray(self.diverged_at)
        first = last = np.full(diverged.shape, np.nan)
        if "loss" in self.observed:
            loss = np.asarray(self.observed["loss"])
            if loss.ndim == diverged.ndim + 1:  # a scalar loss per record
                first = np.take(loss, 0, axis=self.record_axis)
                last = np.take(loss, -1, axis=self.record_axis)

        def describe(step, start, end):
            if step >= 0:
                return (f"diverged at step {step}: the loss or the parameters became "
                        f"non-finite; the last finite iterate is kept")
            if np.isfinite(start) and np.isfinite(end) and start > 0 and end >= RUNAWAY_FACTOR * start:
                return (f"runaway: the loss grew from {start:.3g} to {end:.3g} (at least "
                        f"{RUNAWAY_FACTOR:.0e} times its start): the step size, or a base that "
                        f"already holds a learning rate, makes the run climb")
            return "ok"

        words = np.vectorize(describe, otypes=[object])(diverged, first, last)
        return words.item() if words.ndim == 0 else words

    @property
    def diverged(self):
        return np.asarray(self.diverged_at) >= 0

    def final(self, name: str):
        """The last recorded value of an observable."""
        return np.take(np.asarray(self.observed[name]), -1, axis=self.record_axis)


def record_steps(steps: int, stride: int) -> np.ndarray:
    """The steps at which observables are recorded: 0, stride, 2 stride, ..., and ``steps``.

    Args:
      steps: the number of steps (≥ 1).
      stride: the recording interval (≥ 1).

    Returns:
      A numpy int array, ascending, starting at 0 and ending at ``steps``.

    Examples:
      >>> from sharp_theory.dynamics import record_steps
      >>> record_steps(10, 4).tolist()  # the last step is always recorded
      [0, 4, 8, 10]
    """
    recorded = list(range(0, steps + 1, stride))
    if recorded[-1] != steps:
        recorded.append(steps)
    return np.asarray(recorded)


def simulate(problem: Problem, optimizer: Optimizer, params0, key, *, steps: int, stride: int,
             observables: tuple[Observable, ...], batch_size=None):
    """The traceable body of :func:`run` (vmapped by :func:`sweep`): steps, records, divergence.

    A step diverges when its loss or its new iterate is not finite; from then on the parameters
    stay at the last finite iterate and the records read NaN.

    Args:
      problem: the :class:`sharp_theory.problems.Problem`.
      optimizer: the :class:`sharp_theory.optim.Optimizer` (its hyperparameters may be traced).
      params0: the initial parameters.
      key: the run's JAX PRNG key (batches and the optimizer's randomness are folded from it).
      steps: the number of steps (a static int ≥ 1).
      stride: the recording interval (a static int ≥ 1).
      observables: a tuple of :class:`Observable` (from :func:`as_observables`).
      batch_size: overrides the optimizer's batch size (None: the optimizer's).

    Returns:
      ``(params, observed, diverged_at, costs, state)``: the final (last finite) parameters,
      dict name -> stacked records (one per :func:`record_steps` entry), the first diverged
      step (-1 if none), dict ``costs`` with the ``grad_evals`` and ``hvp_evals`` spent before
      divergence, and the final optimizer state (a caller that drops it pays nothing: XLA
      removes unused outputs).
    """
    observe, advance, start = _machinery(problem, optimizer, key, observables, batch_size)
    carry, warm, first = start(params0)
    n_chunks, remainder = divmod(steps, stride)

    def chunk(carry_and_warm, index):
        carry, warm = carry_and_warm
        carry = advance(carry, index * stride, stride)
        record, warm = observe(carry[0], carry[1], (index + 1) * stride, carry[2] >= 0, warm)
        return (carry, warm), record

    (carry, warm), records = jax.lax.scan(chunk, (carry, warm), jnp.arange(n_chunks))
    pieces = [jax.tree_util.tree_map(lambda x: x[None], first), records]
    if remainder:
        carry = advance(carry, n_chunks * stride, remainder)
        last, _ = observe(carry[0], carry[1], jnp.asarray(steps), carry[2] >= 0, warm)
        pieces.append(jax.tree_util.tree_map(lambda x: x[None], last))
    observed = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *pieces)
    params, state, diverged_at, costs = carry
    return params, observed, diverged_at, costs, state


def _machinery(problem, optimizer, key, observables, batch_size):
    """The pieces of a run: ``observe`` (records at one point), ``advance`` (``count`` steps
    from a step index) and ``start`` (the carry, warm carries and first record at ``params0``).
    """
    batch_size = optimizer.batch_size if batch_size is None else batch_size
    hparams = optimizer.hparams
    loss_fn = problem.loss_function()
    def observe(params, state, step, diverged, warm):
        """The records at one point, and the warm observables' carries for the next one."""
        run_state = RunState(hparams=hparams, optimizer_state=state, step=step)
        values, new_warm = {}, {}
        for obs in observables:
            if isinstance(obs.fn, WarmObservable):
                value, new_warm[obs.name] = obs.fn.update(params, problem, run_state, warm[obs.name])
            else:
                value = obs(params, problem, run_state)
            if isinstance(value, Mapping):  # a dict of arrays: recorded as NAME.KEY
                values.update({f"{obs.name}.{key}": jnp.asarray(v) for key, v in value.items()})
            else:
                values[obs.name] = jnp.asarray(value)
        # After divergence the records read NaN, so plots and summaries cannot mistake them.
        return ({name: jnp.where(diverged, jnp.nan, value) for name, value in values.items()},
                new_warm)

    def one_step(carry, step_and_batch):
        params, state, diverged_at, costs = carry
        step, batch = step_and_batch
        new_params, new_state, info = optimizer.step(params, state, loss_fn, batch, hparams,
                                                     optimizer_key(key, step))
        # A step diverges when its loss (at the current iterate) or its new iterate is not finite.
        still_ok = (diverged_at < 0) & all_finite(new_params) & jnp.all(jnp.isfinite(info["loss"]))
        diverged_at = jnp.where((diverged_at < 0) & ~still_ok, step.astype(diverged_at.dtype),
                                diverged_at)
        params = tree_where(still_ok, new_params, params)
        state = tree_where(still_ok, new_state, state)
        costs = {name: total + jnp.where(still_ok, info.get(name, 0.0), 0.0).astype(total.dtype)
                 for name, total in costs.items()}
        return (params, state, diverged_at, costs), None

    def advance(carry, first_step, count):
        steps_ = first_step + jnp.arange(count)
        # Fresh-noise batches depend only on (key, step): draw a whole stride of them in one
        # vectorized call (the same numbers as drawing them step by step, far fewer kernels).
        if problem.sampler is not None:
            batches = jax.vmap(lambda s: problem.batch(key, s, batch_size, optimizer.replace))(steps_)
            carry, _ = jax.lax.scan(one_step, carry, (steps_, batches))
        else:
            carry, _ = jax.lax.scan(
                lambda c, s: one_step(c, (s, problem.batch(key, s, batch_size, optimizer.replace))),
                carry, steps_)
        return carry

    def start(params0):
        state0 = optimizer.init(params0)
        costs = {"grad_evals": jnp.asarray(0.0), "hvp_evals": jnp.asarray(0.0)}
        carry = (params0, state0, jnp.asarray(-1, jnp.int32), costs)
        state_at_0 = RunState(hparams=hparams, optimizer_state=state0, step=jnp.asarray(0))
        warm = {obs.name: obs.fn.init(params0, problem, state_at_0) for obs in observables
                if isinstance(obs.fn, WarmObservable)}
        first, warm = observe(params0, state0, jnp.asarray(0), jnp.asarray(False), warm)
        return carry, warm, first

    return observe, advance, start


def _start_segment(problem, optimizer, params0, key, *, observables, batch_size):
    return _machinery(problem, optimizer, key, observables, batch_size)[2](params0)


def _segment(problem, optimizer, carry, warm, key, first_step, *, count, stride, record,
             observables, batch_size):
    """One compiled piece of a chunked run: ``count`` intervals of ``stride`` steps from
    ``first_step``, each ending with a record (``record=True``), or ``count`` steps alone."""
    observe, advance, _ = _machinery(problem, optimizer, key, observables, batch_size)
    if not record:
        return advance(carry, first_step, count), warm, None

    def chunk(carry_and_warm, index):
        carry, warm = carry_and_warm
        carry = advance(carry, first_step + index * stride, stride)
        values, warm = observe(carry[0], carry[1], first_step + (index + 1) * stride,
                               carry[2] >= 0, warm)
        return (carry, warm), values

    (carry, warm), records = jax.lax.scan(chunk, (carry, warm), jnp.arange(count))
    return carry, warm, records


# XLA:CPU hands reductions to the YNNPACK library by default. Our runs are long scans of small
# steps whose reductions are small (m-SAM's average over 20 examples, x_kᵀβ over 30 weights), and
# there the library call costs more than the loop XLA emits itself: the diagonal-nets ρ grid
# sweep on one core takes 0.195 s with these options and 0.40 s without (benchmarks/README.md);
# the balancedness sweep and the matrix-sensing runs are unchanged; st.sweep on conv-ReLU nets
# (reductions over d >= 200) is 3-12% slower. The conv-ReLU phase-diagram grid keeps XLA's defaults.
CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}


class cpu_tuned_jit:
    """``jax.jit(fn, static_argnames=...)`` compiled with :data:`CPU_COMPILER_OPTIONS` when JAX's
    default backend is the CPU.

    The backend is looked up at the first call, not at import: looking it up starts JAX's
    backends, after which the CPU device count can no longer be set.
    """

    def __init__(self, fn, static_argnames):
        self.fn, self.static_argnames, self.compiled = fn, tuple(static_argnames), None

    def _jitted(self):
        if self.compiled is None:
            options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
            self.compiled = jax.jit(self.fn, static_argnames=self.static_argnames,
                                    compiler_options=options)
        return self.compiled

    def __call__(self, *args, **kwargs):
        return self._jitted()(*args, **kwargs)

    def lower(self, *args, **kwargs):
        """``jax.jit(...).lower(*args, **kwargs)``: the program, traced, not compiled."""
        return self._jitted().lower(*args, **kwargs)


_simulate_jit = cpu_tuned_jit(simulate, ("steps", "stride", "observables", "batch_size"))
_start_jit = cpu_tuned_jit(_start_segment, ("observables", "batch_size"))
_segment_jit = cpu_tuned_jit(_segment, ("count", "stride", "record", "observables", "batch_size"))

# A run of more than CHUNKED_ABOVE steps is cut into compiled calls of about CHUNK_STEPS steps,
# so Ctrl-C stops it between two calls (within a moment) and keeps what was computed.
CHUNKED_ABOVE = 1 << 20
CHUNK_STEPS = 1 << 13


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a chunked :func:`run`; ``.trajectory`` holds the records completed so far.

    Attributes:
      trajectory: a :class:`Trajectory` of the steps done before the interrupt (its ``steps``
        end at the last completed record; ``params`` are the iterate after the last completed
        chunk).
    """

    def __init__(self, trajectory):
        super().__init__(f"run interrupted after {int(trajectory.steps[-1]):,} recorded steps; "
                         "the completed part is in .trajectory")
        self.trajectory = trajectory


def _chunks(steps: int, stride: int):
    """``(first_step, count, stride, record)`` for each compiled call of a chunked run."""
    calls = []
    n_full, remainder = divmod(steps, stride)
    if stride <= CHUNK_STEPS:
        group = max(1, CHUNK_STEPS // stride)
        done = 0
        while done < n_full:
            count = min(group, n_full - done)
            calls.append((done * stride, count, stride, True))
            done += count
        if remainder:
            calls.append((n_full * stride, 1, remainder, True))
        return calls
    intervals = [stride] * n_full + ([remainder] if remainder else [])
    step = 0
    for length in intervals:
        pieces, last = divmod(length - 1, CHUNK_STEPS)
        for _ in range(pieces):
            calls.append((step, CHUNK_STEPS, None, False))
            step += CHUNK_STEPS
        calls.append((step, 1, last + 1, True))
        step += last + 1
    return calls


def _run_chunked(problem, optimizer, params0, key, *, steps, stride, observables, batch_size):
    """:func:`simulate` as a sequence of compiled calls (see :data:`CHUNKED_ABOVE`)."""
    options = dict(observables=observables, batch_size=batch_size)
    carry, warm, first = _start_jit(problem, optimizer, params0, key, **options)
    records = [jax.tree_util.tree_map(lambda x: np.asarray(x)[None], first)]
    recorded = [0]
    try:
        for first_step, count, interval, record in _chunks(steps, stride):
            carry, warm, values = _segment_jit(problem, optimizer, carry, warm, key,
                                               jnp.asarray(first_step), count=count,
                                               stride=interval, record=record, **options)
            wait_for(carry, "st.run")
            if record:
                records.append(jax.tree_util.tree_map(np.asarray, values))
                recorded += [first_step + (i + 1) * interval for i in range(count)]
    except KeyboardInterrupt:
        raise RunInterrupted(_trajectory_of(carry, records, recorded, optimizer, problem)) from None
    return _trajectory_of(carry, records, recorded, optimizer, problem)


def _trajectory_of(carry, records, recorded, optimizer, problem):
    params, state, diverged_at, costs = carry
    observed = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=0), *records)
    return Trajectory(params=params, observed=observed, steps=np.asarray(recorded),
                      diverged_at=np.asarray(diverged_at),
                      grad_evals=np.asarray(costs["grad_evals"]), state=state,
                      hvp_evals=np.asarray(costs["hvp_evals"]), optimizer=optimizer.name,
                      problem=problem.name)


def _tree_bytes(tree) -> int:
    return sum(int(np.prod(leaf.shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
               for leaf in jax.tree_util.tree_leaves(tree) if hasattr(leaf, "shape"))


def estimate_run_memory(problem, optimizer, params0, observables, *, steps: int, stride: int,
                        lanes: int = 1) -> dict:
    """The memory a run (or ``lanes`` runs of a sweep) will hold, from shapes alone.

    Nothing is computed: the record, parameter and optimizer-state shapes come from
    ``jax.eval_shape``. Records are counted three times (the scan's stacked output, the
    concatenated array and the host copy), state twice (carry in and out).

    Args:
      problem: the Problem.
      optimizer: the Optimizer.
      params0: the initial parameters (only their shapes are read).
      observables: a tuple of :class:`Observable` (from :func:`as_observables`).
      steps: the number of steps.
      stride: the recording interval.
      lanes: runs held at once (a sweep's lanes).

    Returns:
      dict with ``records`` (the count), ``record_bytes`` (one record of one lane),
      ``state_bytes`` (parameters and optimizer state of one lane) and ``total_bytes``.
    """
    state_at_0 = RunState(hparams=optimizer.hparams, optimizer_state=None, step=jnp.asarray(0))

    def one_record(params):
        state = optimizer.init(params)
        run_state = dataclasses.replace(state_at_0, optimizer_state=state)
        values = {}
        for obs in observables:
            if isinstance(obs.fn, WarmObservable):
                values[obs.name] = obs.fn(params, problem, run_state)
            else:
                values[obs.name] = obs(params, problem, run_state)
        return values, state

    record_shapes, state_shapes = jax.eval_shape(one_record, params0)
    record_bytes = _tree_bytes(record_shapes)
    state_bytes = _tree_bytes(params0) + _tree_bytes(state_shapes)
    records = len(range(0, steps + 1, stride)) + (steps % stride != 0)
    per_stride = 16 * min(stride, steps, CHUNK_STEPS if steps > CHUNKED_ABOVE else steps)
    total = lanes * (3 * records * record_bytes + 2 * state_bytes + per_stride)
    return {"records": records, "record_bytes": record_bytes, "state_bytes": state_bytes,
            "total_bytes": total}


def check_run_memory(problem, optimizer, params0, observables, *, steps, stride, lanes=1):
    """Refuse, before any work, a run whose records and state would not fit in half of this
    machine's memory, in one line with the estimate (see :func:`estimate_run_memory`)."""
    estimate = estimate_run_memory(problem, optimizer, params0, observables, steps=steps,
                                   stride=stride, lanes=lanes)
    available = physical_memory_bytes() // 2
    if estimate["total_bytes"] > available:
        raise ConfigError(
            "steps", steps,
            f"a run that fits in memory: stride={stride:,} gives {estimate['records']:,} records "
            f"of {estimate['record_bytes']:,} bytes x {lanes:,} lane(s) plus "
            f"{estimate['state_bytes']:,} bytes of state per lane, about "
            f"{estimate['total_bytes'] / 2**30:,.1f} GiB, more than half of this machine's "
            f"{2 * available / 2**30:,.0f} GiB (record less often: a larger stride)")


def physical_memory_bytes() -> int:
    """This machine's physical memory (a large default where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 1 << 40


def check_step_memory(steps: int, stride: int, lanes: int, parameter: str = "steps") -> None:
    """Refuse, before anything is allocated, a run whose per-stride arrays cannot fit in memory.

    Each stride of a run holds its step indices (and, with a sampler, its batches) as arrays of
    length ``min(stride, steps)`` per lane; 16 bytes per step and lane is a lower bound. A run
    that needs more than half of the machine's memory for them would fail (or swap) part way,
    so it is a ConfigError naming ``parameter``.
    """
    needed = 16 * min(stride, steps) * lanes
    available = physical_memory_bytes() // 2
    if needed > available:
        limit = max(1, available // (16 * lanes))
        culprit, value = (parameter, steps) if stride >= steps else ("stride", stride)
        raise ConfigError(culprit, value, f"at most {limit:,} {'steps' if stride >= steps else ''}"
                          f"{'' if stride >= steps else 'steps between records'} with "
                          f"{lanes} lane(s) on this machine ({min(stride, steps):,} would hold "
                          f"about {needed / 2**30:,.0f} GiB of step data; it has "
                          f"{2 * available / 2**30:,.0f} GiB)")


def check_key(key):
    """Require a JAX PRNG key (typed ``jax.random.key`` or raw ``PRNGKey``)."""
    if isinstance(key, (int, np.integer)) or key is None:
        raise ConfigError("key", key, "a JAX PRNG key, e.g. jax.random.key(0)")
    array = jnp.asarray(key) if not jnp.issubdtype(getattr(key, "dtype", None),
                                                   jax.dtypes.prng_key) else key
    if not jnp.issubdtype(array.dtype, jax.dtypes.prng_key) and array.shape != (2,):
        raise ConfigError("key", getattr(array, "shape", key), "a single JAX PRNG key")
    return key


@resumable  # inside `sharp-theory reproduce`, a saved stage of the lab (sharp_theory.checkpoints)
def run(problem: Problem, optimizer: Optimizer, *, steps: int, key, observe=None, stride: int = 1,
        params0=None, batch_size: int | None = None, init=None) -> Trajectory:
    """Run one trajectory of ``optimizer`` on ``problem``.

    Args:
      problem: a Problem (``st.problems.*``).
      optimizer: an Optimizer (``st.optim.*``).
      steps: number of steps (>= 1).
      key: JAX PRNG key; the step index is folded in, so the same key gives the same run.
      observe: dict name -> ``fn(params, problem, state)`` (:mod:`sharp_theory.observables`;
        ``state`` holds the optimizer's hyperparameters and state), recorded every ``stride``
        steps (default: the problem's evaluation loss as "loss").
      stride: record every ``stride`` steps (>= 1); the initial and final points are recorded.
      params0: initial parameters (default ``problem.params0``).
      batch_size: override the optimizer's batch size.
      init: ``fn(key) -> params``, a random initialization drawn from this run's key (the key
        ``problems.base.init_key(key)``, independent of the batch and optimizer keys); not
        together with ``params0``. The same function given to :func:`sweep` gives lane s the
        same start as ``run(..., key=jax.random.key(s), init=fn)``.

    Returns:
      A :class:`Trajectory` with ``.params``, ``.observed``, ``.steps``, ``.status``.

    Raises:
      ConfigError: a bad argument (not a Problem/Optimizer, steps < 1, a non-key ``key``,
        ``params0`` shaped unlike the problem's, ``init`` with ``params0``, ...), before any work.

    References:
      Li, Zhang, He 2024, Thm 2 (the example: SAM drives the balancedness B of f(xᵀy) to 0).

    Examples:
      SAM on the noisy OP toy drives the balancedness B = ½(‖x‖² − ‖y‖²) from -0.56 to 0:

      >>> import jax
      >>> import sharp_theory as st
      >>> problem = st.problems.op_toy(noise=0.5)
      >>> observe = {"B": st.observables.of_params(st.measure.balancedness)}
      >>> traj = st.run(problem, st.optim.sam(lr=0.05, rho=0.2), steps=300, key=jax.random.key(0),
      ...               stride=100, observe=observe)
      >>> traj.steps.tolist(), traj.status
      ([0, 100, 200, 300], 'ok')
      >>> balancedness = traj.observed["B"]  # one value per recorded step
      >>> round(float(balancedness[0]), 2), bool(abs(balancedness[-1]) < 1e-3)
      (-0.56, True)
      >>> float(traj.grad_evals)  # two gradients per SAM step
      600.0
    """
    if not isinstance(problem, Problem):
        raise ConfigError("problem", type(problem).__name__, "a sharp_theory Problem")
    if not isinstance(optimizer, Optimizer):
        raise ConfigError("optimizer", type(optimizer).__name__, "a sharp_theory Optimizer")
    steps = check_int("steps", steps, minimum=1)
    stride = check_int("stride", stride, minimum=1)
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    check_batch_fits(problem, optimizer, batch_size)
    check_key(key)
    observables = as_observables(observe)
    params0 = starting_params(problem, params0, init, key)
    check_step_memory(steps, stride, lanes=1)
    check_run_memory(problem, optimizer, params0, observables, steps=steps, stride=stride)
    if steps > CHUNKED_ABOVE:
        return _run_chunked(problem, optimizer, params0, key, steps=steps, stride=stride,
                            observables=observables, batch_size=batch_size)
    params, observed, diverged_at, costs, state = wait_for(_simulate_jit(
        problem, optimizer, params0, key, steps=steps, stride=stride, observables=observables,
        batch_size=batch_size), "st.run")
    # Records come back to the host as numpy arrays (small, and convenient to index and save).
    return Trajectory(params=params, observed=jax.tree_util.tree_map(np.asarray, observed),
                      steps=record_steps(steps, stride), diverged_at=np.asarray(diverged_at),
                      grad_evals=np.asarray(costs["grad_evals"]), state=state,
                      hvp_evals=np.asarray(costs["hvp_evals"]), optimizer=optimizer.name,
                      problem=problem.name)


def starting_params(problem: Problem, params0, init, key):
    """Where a run (or a flow) starts: ``init(key)`` when given, else ``params0``, else the
    problem's own ``params0``; checked against the problem's parameter shapes.

    Raises:
      ConfigError: both ``init`` and ``params0`` given, or parameters of other shapes.
    """
    check_init(init, params0, problem)
    if init is not None:
        params0 = init(init_key(key))
    params0 = problem.params0 if params0 is None else params0
    check_params_match(problem.params0, params0)
    return params0


def check_init(init, params0, problem: Problem) -> None:
    """``init`` must be a callable ``fn(key) -> params`` shaped like the problem's parameters
    (checked with ``jax.eval_shape``, nothing is computed), and not given with ``params0``."""
    if init is None:
        return
    if not callable(init):
        raise ConfigError("init", init, "a function key -> params")
    if params0 is not None:
        raise ConfigError("init", "given with params0", "either params0 or init, not both")
    try:
        shapes = jax.eval_shape(init, jax.random.key(0))
    except Exception as error:  # any failure of the user's function, reported as bad input
        raise ConfigError("init", getattr(init, "__name__", init),
                          f"a function key -> params (calling it failed: {error})") from None
    check_params_match(problem.params0, shapes, name="init")


def check_params_match(reference, params, name: str = "params0"):
    if reference is None:
        return
    ref_struct = jax.tree_util.tree_structure(reference)
    struct = jax.tree_util.tree_structure(params)
    if ref_struct != struct:
        raise ConfigError(name, str(struct), f"the problem's structure {ref_struct}")
    paths = jax.tree_util.tree_flatten_with_path(reference)[0]
    for (path, a), b in zip(paths, jax.tree_util.tree_leaves(params)):
        where = name + jax.tree_util.keystr(path)
        if jnp.shape(a) != jnp.shape(b):
            raise ConfigError(where, f"shape {jnp.shape(b)}", f"shape {jnp.shape(a)}")
        a_dtype, b_dtype = jnp.result_type(a), jnp.result_type(b)
        if (jnp.issubdtype(a_dtype, jnp.floating) and jnp.issubdtype(b_dtype, jnp.floating)
                and a_dtype != b_dtype and not isinstance(b, (float, int))):
            # One dtype policy: a run is in the problem's precision, never silently in another.
            raise ConfigError(where, f"dtype {b_dtype}",
                              f"the problem's dtype {a_dtype} (cast it, or build the problem "
                              f"with dtype='{b_dtype}' to run in {b_dtype})")


def check_batch_fits(problem: Problem, optimizer: Optimizer, batch_size, parameter="batch_size"):
    """Refuse a mini-batch larger than a finite data set (it would silently be the full batch).

    Sampling with replacement (``replace=True``) may draw more examples than there are.
    """
    size = optimizer.batch_size if batch_size is None else batch_size
    n = problem.n_examples
    if size is not None and n is not None and size > n and not optimizer.replace:
        raise ConfigError(parameter, size, f"at most the {n} examples of problem "
                          f"{problem.name!r} (or None for full-batch steps)")
