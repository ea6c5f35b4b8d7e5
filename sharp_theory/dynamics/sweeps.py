"""Sweeps: seeds x hyperparameter / problem-constant grids x optimizers in one compiled call.

Every grid value is an argument of the compiled program (a pytree leaf), never a constant baked
into it, so a second sweep with other values of the same shapes reuses the compilation.

Each optimizer is vmapped over its grid axes and the seeds, and the longest of those axes is
divided among every device of JAX's default platform with ``jax.shard_map``: on a CPU machine
importing sharp_theory makes one JAX device per core (see ``sharp_theory.jax_setup``), so a sweep
uses all cores; on a GPU machine the runs are spread over the GPUs. That axis is padded to a
multiple of the device count by repeating its last entry; the padding is dropped before anything
is returned. Sharded and unsharded sweeps agree bit for bit on the problems the
tests compare; in general XLA may fuse a program vmapped over fewer lanes differently, so they
agree to rounding (which chaotic dynamics amplify): a result is repeatable bit for bit on the
same machine with the same device count.

Under ``jax.distributed`` (several processes, see sharp_theory.launch) the devices are those of
every process: each runs its share of the lanes and receives all of them, so every process
returns the same, whole result.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..checkpoints import resumable
from ..errors import ConfigError, check_int
from ..optim.base import Optimizer, check_hparam
from ..problems.base import Problem, init_key
from .stall import wait_for
from .trajectory import (Trajectory, as_observables, check_batch_fits, check_init,
                         check_params_match, check_run_memory,
                         check_step_memory, cpu_tuned_jit, record_steps, simulate)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """Trajectories of every optimizer over a grid.

    Attributes:
      axes: names of the leading axes of every array, in order: the grid names, then "seed".
      coords: dict axis name -> the values along that axis.
      trajectories: dict optimizer name -> :class:`Trajectory` whose arrays have the leading
        shape ``tuple(len(coords[a]) for a in axes)``.
    """

    axes: tuple
    coords: dict
    trajectories: dict

    def __getitem__(self, name: str) -> Trajectory:
        return self.trajectories[name]

    def __repr__(self) -> str:
        """Axes, shape, optimizers and recorded names: no arrays."""
        first = next(iter(self.trajectories.values()), None)
        observed = sorted(first.observed) if first is not None else []
        return (f"SweepResult(axes={self.axes}, shape={self.shape}, "
                f"optimizers={list(self.trajectories)}, observed={observed})")

    def __iter__(self):
        return iter(self.trajectories)

    def items(self):
        return self.trajectories.items()

    @property
    def shape(self) -> tuple:
        return tuple(len(self.coords[a]) for a in self.axes)


def _name_optimizers(optimizers) -> dict:
    if isinstance(optimizers, Optimizer):
        return {optimizers.name: optimizers}
    if isinstance(optimizers, Mapping):
        named = dict(optimizers)
    elif isinstance(optimizers, Sequence) and not isinstance(optimizers, str):
        named = {}
        for optimizer in optimizers:
            if not isinstance(optimizer, Optimizer):
                raise ConfigError("optimizers", type(optimizer).__name__, "sharp_theory Optimizers")
            if optimizer.name in named:
                raise ConfigError("optimizers", optimizer.name,
                                  "unique names (pass a dict name -> optimizer)")
            named[optimizer.name] = optimizer
    else:
        raise ConfigError("optimizers", type(optimizers).__name__,
                          "an Optimizer, a list of them, or a dict name -> Optimizer")
    if not named:
        raise ConfigError("optimizers", "{}", "at least one optimizer")
    for name, optimizer in named.items():
        if not isinstance(optimizer, Optimizer):
            raise ConfigError(f"optimizers[{name!r}]", type(optimizer).__name__, "an Optimizer")
    return named


def _seed_list(seeds) -> np.ndarray:
    """The seeds as an int64 array (a count n: 0..n-1), checked without a Python loop."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return np.arange(check_int("seeds", seeds, minimum=1), dtype=np.int64)
    array = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds)
    if array.ndim != 1 or array.size == 0:
        raise ConfigError("seeds", seeds, "a positive count or a non-empty list of integers")
    if array.dtype.kind not in "iu":
        bad = next((s for s in array.tolist() if isinstance(s, bool) or not isinstance(s, int)),
                   array.tolist()[0])
        raise ConfigError("seeds", bad, "an integer >= 0")
    if np.any(array < 0):
        raise ConfigError("seeds", int(array[array < 0][0]), "an integer >= 0")
    return array.astype(np.int64)


def seed_key_data(seeds) -> np.ndarray:
    """The key data of ``jax.random.key(s)`` for every seed, built in one vectorized call.

    Args:
      seeds: a 1-D integer array.

    Returns:
      A numpy array of shape (len(seeds), *key data shape): row i equals
      ``jax.random.key_data(jax.random.key(seeds[i]))``.
    """
    return np.asarray(jax.random.key_data(jax.vmap(jax.random.key)(jnp.asarray(seeds))))


def axis_target(axis: str, optimizers: dict) -> tuple[str | None, str]:
    """``(optimizer name or None, hyperparameter or constant name)`` that a grid axis sets.

    ``"rho"`` sets every optimizer's ``rho`` (and is None-scoped); ``"asam.rho"`` sets only the
    ``rho`` of the optimizer named ``"asam"`` in this sweep, so one optimizer can have a grid of
    its own next to a shared one.
    """
    scope, dot, name = axis.rpartition(".")
    if dot and scope in optimizers:
        return scope, name
    return None, axis


def optimizer_axes(axis_names, optimizer_name: str, optimizer: Optimizer, problem: Problem):
    """The grid axes one optimizer depends on, in grid order.

    A shared axis ("rho") applies to every optimizer with that hyperparameter (or to all, for a
    problem constant), except where an axis of the optimizer's own ("asam.rho") replaces it.
    """
    own = {axis.rpartition(".")[2] for axis in axis_names
           if axis.rpartition(".")[0] == optimizer_name
           and axis.rpartition(".")[2] in optimizer.hparams}
    depends = []
    for axis in axis_names:
        scope, _, name = axis.rpartition(".")
        if scope == optimizer_name and name in own:
            depends.append(axis)
        elif axis in problem.constants or (axis in optimizer.hparams and axis not in own):
            depends.append(axis)
    return tuple(depends)


def _numeric_grid(parameter: str, values) -> np.ndarray:
    """A grid's values as a float array; strings, bools and objects are refused, not converted."""
    array = np.asarray(values) if not isinstance(values, (str, bytes)) else None
    if array is None or array.dtype.kind not in "iuf":
        raise ConfigError(parameter, values, "a non-empty 1-D sequence of numbers")
    array = array.astype(float)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ConfigError(parameter, values, "a non-empty 1-D sequence of values")
    return array


def _grid_arrays(grid, problem: Problem, optimizers: dict) -> dict:
    """Validate every grid axis before any work: names, shapes, and each value against the
    declared domain of every hyperparameter it sets (``lr`` > 0, ``switch_prob`` in [0, 1], ...).
    """
    arrays = {}
    for axis, values in (grid or {}).items():
        if axis == "seed":
            raise ConfigError("grid", axis, "hyperparameter or problem-constant names ('seed' is "
                              "set by seeds=)")
        scope, name = axis_target(axis, optimizers)
        targets = {scope: optimizers[scope]} if scope is not None else optimizers
        setting = {key: opt for key, opt in targets.items() if name in opt.hparams
                   and (scope is not None or f"{key}.{name}" not in (grid or {}))}
        in_constants = scope is None and name in problem.constants
        if not (setting or in_constants):
            known = sorted({k for o in optimizers.values() for k in o.hparams} | set(problem.constants)
                           | {f"{key}.{k}" for key, o in optimizers.items() for k in o.hparams})
            raise ConfigError("grid", axis, "one of " + ", ".join(known))
        if setting and in_constants:
            raise ConfigError("grid", axis, "a name that is not both a hyperparameter and a "
                              "problem constant")
        array = _numeric_grid(f"grid[{axis!r}]", values)
        if setting:
            if array.ndim != 1:
                raise ConfigError(f"grid[{axis!r}]", array.shape, "a 1-D sequence")
            for key, optimizer in setting.items():
                try:
                    check_hparam(optimizer.rule, name, values, parameter=f"grid[{axis!r}]")
                except ConfigError as error:
                    raise ConfigError(error.parameter, error.value,
                                      f"{error.valid} ({key}'s {name})") from None
        else:
            expected = np.shape(problem.constants[name])
            if array.shape[1:] != expected:
                raise ConfigError(f"grid[{axis!r}]", array.shape, f"shape (k, *{expected})")
            if not np.all(np.isfinite(array)):
                raise ConfigError(f"grid[{axis!r}]", values, "finite values")
        arrays[axis] = array
    return arrays


def _with_values(problem: Problem, optimizer: Optimizer, values: dict):
    hparams = dict(optimizer.hparams)
    constants = dict(problem.constants)
    for axis, value in values.items():
        name = axis.rpartition(".")[2]
        if name in hparams:
            hparams[name] = value.astype(hparams[name].dtype)
        else:
            constants[name] = value.astype(jnp.asarray(constants[name]).dtype)
    return (dataclasses.replace(problem, constants=constants),
            dataclasses.replace(optimizer, hparams=hparams))


def _vmapped(fn, axis_names):
    """vmap ``fn(values, key)`` over keys (innermost), then over each named grid axis.

    Nested rather than flattened on purpose: a computation that does not depend on an axis stays
    unbatched along it (the fresh-noise draws of a seed are made once, not once per grid value).
    """
    mapped = jax.vmap(fn, in_axes=(None, 0))
    for name in reversed(axis_names):
        spec = {n: (0 if n == name else None) for n in axis_names}
        mapped = jax.vmap(mapped, in_axes=(spec, None))
    return mapped


_SPLIT = "lanes"


def _sweep_body(problem, optimizers, values, keys, params0, *, steps, stride, observables,
                batch_size, plan, mesh, init):
    """Every optimizer over its grid axes and seeds (split over ``mesh``'s devices if given).

    ``plan`` holds ``(name, own_axes, split)``: the grid axes the optimizer depends on and the
    position in ``own_axes + ("seed",)`` of the axis divided among the devices.
    """
    results = {}
    for name, own_axes, split in plan:
        def run_grid(values, keys, problem, optimizer, params0, own_axes=own_axes):
            def one_run(lane_values, key):
                run_problem, run_optimizer = _with_values(problem, optimizer, lane_values)
                start = params0 if init is None else init(init_key(key))
                return simulate(run_problem, run_optimizer, start, key, steps=steps,
                                stride=stride, observables=observables, batch_size=batch_size)
            return _vmapped(one_run, own_axes)(values, keys)

        if mesh is not None:
            axes = own_axes + ("seed",)
            split_axis = PartitionSpec(_SPLIT)
            value_specs = {a: split_axis if axes[split] == a else PartitionSpec() for a in own_axes}
            key_spec = split_axis if axes[split] == "seed" else PartitionSpec()
            run_grid = jax.shard_map(
                run_grid, mesh=mesh,
                in_specs=(value_specs, key_spec, PartitionSpec(), PartitionSpec(), PartitionSpec()),
                out_specs=PartitionSpec(*([None] * split + [_SPLIT])), check_vma=False)
        results[name] = run_grid(values[name], keys[name], problem, optimizers[name], params0)
    return results


_STATIC = ("steps", "stride", "observables", "batch_size", "plan", "mesh", "init")
_sweep_jit = cpu_tuned_jit(_sweep_body, _STATIC)


def lane_mesh(n_lanes: int, shard: bool = True) -> Mesh | None:
    """A one-axis mesh over the default platform's devices (at most ``n_lanes`` of them).

    Args:
      n_lanes: the length of the axis to split (≥ 1).
      shard: False to use one device (no mesh).

    Returns:
      A ``jax.sharding.Mesh`` over ``min(device count, n_lanes)`` devices, or None when
      sharding is off or only one device would be used.
    """
    devices = jax.devices()
    count = min(len(devices), n_lanes) if shard else 1
    if count <= 1:
        return None
    return Mesh(np.asarray(devices[:count]), (_SPLIT,))


def threads_suffice(devices: int) -> bool:
    """Whether XLA's CPU thread pool has a thread to spare when ``devices`` programs run at once.

    Each CPU device's program holds one thread of the intra-op pool while it runs; a LAPACK
    kernel of a batch of matrices (``eigh``, ``svd``, ``cholesky``, ... under vmap) splits the
    batch over the same pool and waits for the pieces, so with no thread to spare every device
    can wait for pieces nobody runs (a hang at 0% CPU). ``sharp_theory`` starts JAX with
    ``cores + devices`` threads (see ``sharp_theory.jax_setup``); this says whether that held.

    Args:
      devices: the number of devices the program runs on at once.

    Returns:
      True off the CPU, or when the pool has more threads than ``devices``.
    """
    from ..jax_setup import intra_op_threads

    return jax.default_backend() != "cpu" or intra_op_threads() > devices


def uses_batched_lapack(lowered) -> bool:
    """Whether a lowered program calls a LAPACK kernel (a custom call named ``lapack_*``).

    Args:
      lowered: a ``jax.stages.Lowered`` program.

    Returns:
      True when its StableHLO text names a LAPACK custom call target.
    """
    return "lapack_" in lowered.as_text()


_SAID_UNSHARDED = []


def _say_unsharded_once(devices: int) -> None:
    if not _SAID_UNSHARDED:
        _SAID_UNSHARDED.append(True)
        import warnings

        from ..jax_setup import intra_op_threads
        warnings.warn(
            f"sharp_theory: this sweep runs on one device: its program calls LAPACK (eigh, svd, "
            f"...) and XLA's CPU pool has {intra_op_threads()} threads for {devices} devices, "
            f"where a sharded run can hang; set NPROC={intra_op_threads() + devices} (or unset "
            f"it) before importing JAX to shard it", RuntimeWarning, stacklevel=4)


def _padded(array, multiple: int):
    """``array`` with its first axis padded to a multiple of ``multiple`` (last entry repeated)."""
    length = array.shape[0]
    index = np.minimum(np.arange(-(-length // multiple) * multiple), length - 1)
    return array[index]


def _gather_processes(tree):
    """Every leaf of ``tree`` (sharded over the devices of several processes) whole, as numpy."""
    from jax.experimental import multihost_utils

    def gather(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = multihost_utils.process_allgather(jax.random.key_data(leaf), tiled=True)
            return jax.random.wrap_key_data(np.asarray(data), impl=jax.random.key_impl(leaf))
        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree_util.tree_map(gather, tree)


def _broadcast(array, own_axes, all_axes, full_shape):
    """Insert singleton axes for grid axes an optimizer does not depend on, then broadcast."""
    array = np.asarray(array)
    index = 0
    shape = []
    for axis in all_axes:
        if axis in own_axes:
            shape.append(array.shape[index])
            index += 1
        else:
            shape.append(1)
    array = array.reshape(tuple(shape) + array.shape[index:])
    return np.broadcast_to(array, tuple(full_shape) + array.shape[len(all_axes):])


@resumable  # inside `sharp-theory reproduce`, a saved stage of the lab (sharp_theory.checkpoints)
def sweep(problem: Problem, optimizers, *, steps: int, seeds=1, grid: Mapping | None = None,
          observe=None, stride: int = 1, batch_size: int | None = None,
          params0=None, shard: bool = True, init=None) -> SweepResult:
    """Run every optimizer over a grid of values and seeds in one compiled, vmapped call.

    Args:
      problem: a Problem.
      optimizers: an Optimizer, a list of them (named by ``.name``) or a dict name -> Optimizer.
      steps: steps per run (>= 1).
      seeds: a count n (seeds 0..n-1) or a list of integer seeds; seed s uses
        ``jax.random.key(s)``, so lane s equals ``run(..., key=jax.random.key(s))``.
      grid: dict name -> values; a name is an optimizer hyperparameter ("lr", "rho", "alpha"),
        a problem constant ("noise", ...), or ``"OPTIMIZER.hparam"`` for an axis of one
        optimizer only (``"asam.rho"``: ASAM's radius on its own scale next to SAM's "rho").
        The grid is the product of the axes, in order. An optimizer without a hyperparameter
        (SGD and "rho") is run once and broadcast along it. Every value is checked against the
        domain its rule declares (a probability above 1, a negative radius, a string) before
        any work, in one line naming the axis, the value and the valid range.
      observe: dict name -> ``fn(params, problem, state)``, recorded every ``stride`` steps
        (default: the problem's evaluation loss as "loss"), as for :func:`run`.
      stride: record every ``stride`` steps (>= 1); the first and last steps are recorded.
      batch_size: override the optimizers' batch size (None: each optimizer's own).
      params0: initial parameters of every lane (default ``problem.params0``).
      shard: split each optimizer's lanes over all devices of JAX's default platform (default);
        False runs every lane on the first device.
      init: ``fn(key) -> params``: each seed draws its own initialization (as in :func:`run`;
        the same start for every grid value of that seed). ``fn`` is part of the compiled
        program: pass the same function object to reuse the compilation.

    Returns:
      A :class:`SweepResult`; arrays have leading shape (len(grid[a]) for a in grid) + (n_seeds,).

    Raises:
      ConfigError: a bad argument or a grid value outside its domain, before any work.

    Examples:
      SAM's balancing of the OP toy needs ρ > 0: the ρ = 0 lane (plain SGD) keeps B away from 0.

      >>> import sharp_theory as st
      >>> problem = st.problems.op_toy(noise=0.5)
      >>> result = st.sweep(problem, st.optim.sam(lr=0.05, rho=0.2), grid={"rho": [0.0, 0.2]},
      ...                   seeds=1, steps=300, stride=100,
      ...                   observe={"B": st.observables.of_params(st.measure.balancedness)})
      >>> result.axes, result.shape, result["sam"].observed["B"].shape  # (rho, seed, records)
      (('rho', 'seed'), (2, 1), (2, 1, 4))
      >>> final = result["sam"].final("B")[:, 0]  # one value per rho
      >>> round(float(final[0]), 2), bool(abs(final[1]) < 1e-3)
      (-0.26, True)
    """
    if not isinstance(problem, Problem):
        raise ConfigError("problem", type(problem).__name__, "a sharp_theory Problem")
    named = _name_optimizers(optimizers)
    steps = check_int("steps", steps, minimum=1)
    stride = check_int("stride", stride, minimum=1)
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    for optimizer in named.values():
        check_batch_fits(problem, optimizer, batch_size)
    seed_list = _seed_list(seeds)
    if grid is not None and not isinstance(grid, Mapping):
        raise ConfigError("grid", type(grid).__name__, "a dict name -> values")
    arrays = _grid_arrays(grid, problem, named)
    n_lanes = len(seed_list) * int(np.prod([len(v) for v in arrays.values()], dtype=np.int64))
    check_step_memory(steps, stride, lanes=n_lanes * len(named))
    observables = as_observables(observe)
    check_init(init, params0, problem)
    params0 = problem.params0 if params0 is None else params0
    check_params_match(problem.params0, params0)
    for optimizer in named.values():
        check_run_memory(problem, optimizer, params0, observables, steps=steps, stride=stride,
                         lanes=n_lanes)

    if not isinstance(shard, bool):
        raise ConfigError("shard", shard, "True or False")

    axis_names = tuple(arrays)
    axes_per_optimizer = tuple((name, optimizer_axes(axis_names, name, opt, problem))
                               for name, opt in named.items())
    # Key data in numpy, so padding the seed axis is a host-side gather.
    seed_keys = seed_key_data(seed_list)
    shapes = {name: tuple(len(arrays[a]) for a in own) + (len(seed_list),)
              for name, own in axes_per_optimizer}
    mesh = lane_mesh(max(max(shape) for shape in shapes.values()), shard)
    multiple = 1 if mesh is None else mesh.devices.size
    plan, values, keys = [], {}, {}
    for name, own_axes in axes_per_optimizer:
        # Divide the longest of the optimizer's axes (grid axes and seeds) among the devices.
        split = int(np.argmax(shapes[name]))
        axes = own_axes + ("seed",)
        values[name] = {a: (_padded(arrays[a], multiple) if axes[split] == a else arrays[a])
                        for a in own_axes}
        key_data = _padded(seed_keys, multiple) if axes[split] == "seed" else seed_keys
        keys[name] = jax.random.wrap_key_data(key_data)
        plan.append((name, own_axes, split))
    if mesh is not None:
        # Arrays committed to one device (a previous run's params, device_put data) must be
        # copied to every device of the mesh first; jit would refuse the mix.
        everywhere = NamedSharding(mesh, PartitionSpec())
        problem, named, params0 = jax.device_put((problem, named, params0), everywhere)
    arguments = dict(steps=steps, stride=stride, observables=observables, batch_size=batch_size,
                     plan=tuple(plan), init=init)
    if mesh is not None and not threads_suffice(mesh.devices.size) and uses_batched_lapack(
            _sweep_jit.lower(problem, named, values, keys, params0, mesh=mesh, **arguments)):
        _say_unsharded_once(mesh.devices.size)
        return sweep.__wrapped__(problem, optimizers, steps=steps, seeds=seeds, grid=grid,
                                 observe=observe, stride=stride, batch_size=batch_size,
                                 params0=None if init is not None else params0, shard=False,
                                 init=init)
    raw = wait_for(_sweep_jit(problem, named, values, keys, params0, mesh=mesh, **arguments),
                   "st.sweep")
    if mesh is not None and jax.process_count() > 1:
        # Several processes (jax.distributed): each holds only its devices' lanes; every
        # process gets all of them, so every process returns the same, whole result.
        raw = _gather_processes(raw)

    all_axes = axis_names + ("seed",)
    full_shape = tuple(len(arrays[a]) for a in axis_names) + (len(seed_list),)
    trajectories = {}
    for name, own_axes in axes_per_optimizer:
        own = own_axes + ("seed",)

        def widen(x, own=own, shape=shapes[name]):
            # Drop the padding (only the split axis has any), then broadcast along the grid axes
            # this optimizer does not depend on.
            x = np.asarray(x)[tuple(slice(0, n) for n in shape)]
            return _broadcast(x, own, all_axes, full_shape)

        params, observed, diverged_at, costs, state = raw[name]
        trajectories[name] = Trajectory(
            params=jax.tree_util.tree_map(widen, params),
            observed={k: widen(v) for k, v in observed.items()},
            steps=record_steps(steps, stride), diverged_at=widen(diverged_at),
            grad_evals=widen(costs["grad_evals"]), state=jax.tree_util.tree_map(widen, state),
            hvp_evals=widen(costs["hvp_evals"]),
            optimizer=named[name].name, problem=problem.name,
            record_axis=len(all_axes))
    coords = {name: arrays[name] for name in axis_names}
    coords["seed"] = seed_list
    return SweepResult(axes=all_axes, coords=coords, trajectories=trajectories)
