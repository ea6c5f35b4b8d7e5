"""Phase-diagram sweeps: a (dimension × signal strength × repeat × optimizer) grid of conv-ReLU
training runs as one compiled program, chunked, resumable, sharded over every visible device.

What it does, and why:

* Every cell (d, ‖μ‖, repeat) draws its own data and initialization inside the compiled program
  (:func:`sharp_theory.problems.conv_relu.build_problem`) and trains with
  :func:`sharp_theory.dynamics.trajectory.simulate` — the same body as ``st.run`` — vmapped over cells.
  Cell (d, ‖μ‖, seed) therefore equals ``st.run(conv_relu_signal_noise(d, ‖μ‖, seed=seed), opt,
  key=jax.random.key(seed))`` (tests check this).
* Two engines (``engine=``, :func:`select_engine`). ``"weights"`` trains W itself. ``"span"``
  uses the signal-noise decomposition: every gradient is a combination of training patches, so
  ``W(t) = W(0) + A(t) Q`` with Q an orthonormal basis of the K = 1 + n(P−1) patches
  (:func:`sharp_theory.problems.conv_relu.patch_span_basis`), and for rules that commute with
  rotations (GD, SGD, SAM, USAM; not Adam) training A from 0 is training W in other
  coordinates. A step then costs O(n P m K) instead of O(n P m d); d is paid only when a cell's
  data are drawn and at its records, where observables read W rebuilt from A. The two engines'
  records agree to rounding (≈ 2e-15 on the quick preset; tests/test_conv_relu_span.py).
  ``"auto"`` (the default) takes ``"span"`` whenever it applies.
* Dimensions share programs by zero padding: a cell of dimension d has zeros beyond d, which
  leaves the ReLU network's outputs and gradients unchanged (a test checks losses, gradients and
  whole trajectories). Each chunk is padded to the smallest size of the ladder
  ``max(dims) / r^k`` (rounded up) that holds its largest d: a few compiled programs instead of
  one, and far less arithmetic on zeros than padding every cell to ``max(dims)`` (2.1x less on
  the CPU preset with r = 2, the weights engine's ratio; the span engine uses r = 4:
  :data:`LADDER_RATIO`, benchmarks/README.md).
* Cells are processed in chunks of ``chunk_size`` (chosen from a memory budget unless given), the
  last chunk padded by repeating its last cell; a progress bar counts chunks.
* With ``checkpoint_dir`` every finished chunk is saved atomically (temporary file, then
  ``os.replace``) next to a manifest holding a fingerprint of all arguments. A sweep restarted with
  the same arguments loads the finished chunks and computes only the rest; the result is identical
  to an uninterrupted run. Different arguments in the same folder are refused.
* Each chunk's cell axis is split over all devices of the chosen platform with ``jax.shard_map``
  on a one-axis ``Mesh`` (``PartitionSpec("cells")``): every device runs the same per-cell
  program on its share, so the sharded result equals the unsharded one (a test forces 4 CPU
  devices and compares bit for bit).

* The distinct programs a call needs (one per ladder size) are lowered first and compiled by
  XLA in parallel threads while the first chunks run; with the persistent compilation cache
  (sharp_theory.compile_cache) a later process loads them from disk instead.

Several processes or hosts (jax.distributed; ``sharp-theory launch`` or ``reproduce
--coordinator``, see sharp_theory.launch): ``jax.devices()`` then lists the devices of all
processes, the mesh spans them, every process builds the (tiny) cell arrays for its own devices
with ``jax.make_array_from_callback``, and results are gathered to every process with
``multihost_utils.process_allgather``. Only process 0 writes checkpoints. Two processes with one
CPU device each give bit for bit the result of one process with two (tests/test_launch.py).

References: Chen, Zhang, Kou, Chen, Hsieh, Gu. NeurIPS 2023 (arXiv 2310.07269), Fig. 1 (phase
diagrams of SGD and SAM over d and ‖μ‖).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import optim
from ..dynamics.trajectory import Observable, as_observables, record_steps, simulate
from ..errors import ConfigError, check_choice, check_int, check_positive
from ..measure import signal_noise
from ..observables import RunState, WarmObservable, all_of_params_and_problem
from ..optim.base import Optimizer
from ..output import progress as progress_bar
from ..output import write_atomic
from ..problems import conv_relu

_AXIS = "cells"
_FORMAT_VERSION = 2  # 2: chunks padded to their ladder size (rounding differs from 1)


def ascent_point_noise_activation(params, problem, state: RunState):
    """Fraction of label-aligned noise ReLUs active where the optimizer takes its gradient.

    For SAM that is the ascent point ``W + τ ∇L/‖∇L‖`` (full-batch gradient as a proxy for the
    mini-batch one), for SGD/GD (τ = 0) the iterate itself. τ is the run's own radius, the
    optimizer's ``rho`` hyperparameter (0 when it has none).

    Args:
      params: the network's parameters ``{"W": ...}``.
      problem: a conv-ReLU problem.
      state: the run state (its ``hparams`` hold ρ).

    Returns:
      A scalar fraction in [0, 1].

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Sec. 5.
    """
    radius = state.hparams.get("rho", jnp.asarray(0.0))
    grads = jax.grad(problem.loss)(params, problem.examples)
    norm = jnp.linalg.norm(grads["W"])
    tiny = jnp.finfo(grads["W"].dtype).tiny
    ascent = {"W": params["W"] + radius * grads["W"] / jnp.maximum(norm, tiny)}
    return signal_noise.noise_activation_fraction(ascent, problem, label_aligned=True)


DEFAULT_OBSERVABLES = {
    **all_of_params_and_problem({
        "train_loss": conv_relu.training_loss,
        "train_error": conv_relu.training_error,
        "test_error": conv_relu.observed_label_test_error,
        "clean_test_error": conv_relu.clean_label_test_error,
        "max_rho": signal_noise.max_noise_coefficient,
        "max_gamma": signal_noise.max_signal_coefficient,
        "aligned_active": signal_noise.aligned_noise_activation_fraction}),
    "ascent_aligned_active": ascent_point_noise_activation,
}
"""What :func:`conv_relu_grid` records by default: train loss and error, observed- and
clean-label test error, the largest noise memorization ``max_rho`` and signal learning
``max_gamma`` (Chen et al. 2023, Sec. 5), and the fraction of label-aligned noise ReLUs active
at the iterate and at the optimizer's ascent point.
"""


@dataclasses.dataclass(frozen=True)
class GridResult:
    """The records of a :func:`conv_relu_grid` sweep.

    Attributes:
      dims: the patch dimensions d of the grid's rows.
      signal_strengths: the ‖μ‖ values of the grid's columns.
      seeds: the seed of each repeat.
      steps: the recorded step indices.
      observed: optimizer name -> observable name -> array (n_dims, n_signals, n_seeds, n_records).
      complete: False when the sweep stopped early (``max_new_chunks``); missing cells are NaN.
      chunks_loaded: chunks read from ``checkpoint_dir``.
      chunks_computed: chunks computed in this call.
      wall_time_s: seconds spent in this call.
      devices: the devices the cells were spread over.
      config: the settings (layout, rates, chunk size, ...).
    """

    dims: np.ndarray
    signal_strengths: np.ndarray
    seeds: np.ndarray
    steps: np.ndarray
    observed: dict
    complete: bool
    chunks_loaded: int
    chunks_computed: int
    wall_time_s: float
    devices: tuple
    config: dict

    def final(self, optimizer: str, name: str) -> np.ndarray:
        """The last record of an observable, shape (n_dims, n_signals, n_seeds)."""
        return self.observed[optimizer][name][..., -1]


def paper_tau_unit(dim, batch_size, n_filters, n_patches, noise_std):
    """The SAM radius scale of Chen et al. 2023 (Thm 4.1): ``τ₀ = m √B / (P σ_p √d)``.

    With ``tau_scaling="paper"`` an optimizer's ``rho`` hyperparameter multiplies this unit,
    so the radius shrinks like 1/√d across the grid.

    Args:
      dim: the patch dimension d (> 0; scalar or array).
      batch_size: the mini-batch size B (> 0).
      n_filters: the number of filters m per class.
      n_patches: the number of patches P.
      noise_std: the noise standard deviation σ_p (> 0).

    Returns:
      τ₀ as a JAX array of ``dim``'s shape.

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Thm 4.1.
    """
    return n_filters * jnp.sqrt(batch_size) / (n_patches * noise_std * jnp.sqrt(dim))


def _in_weight_space(observable: Observable, problem, basis) -> Observable:
    """The observable read at ``W = W0 + A Q`` on the network problem, for a coefficient run."""
    def fn(params, _coefficient_problem, state):
        return observable(conv_relu.weights_from_coefficients(params, problem, basis), problem,
                          state)
    return Observable(observable.name, fn)


def _run_cell_optimizer(trained, optimizer, seed, dim, settings, *, layout, steps, stride,
                        observables, tau_scaling, dtype):
    hparams = dict(optimizer.hparams)
    if "rho" in hparams and tau_scaling == "paper":
        # The radius scales with the cell's dimension; observables read it from the run state.
        batch = optimizer.batch_size or layout.n_train
        radius = hparams["rho"] * paper_tau_unit(dim.astype(dtype), batch, layout.n_filters,
                                                 layout.n_patches, settings["noise_std"])
        hparams["rho"] = radius.astype(optimizer.hparams["rho"].dtype)
    optimizer = dataclasses.replace(optimizer, hparams=hparams)
    _, observed, diverged_at, _, _ = simulate(trained, optimizer, trained.params0,
                                              jax.random.key(seed), steps=steps, stride=stride,
                                              observables=observables, batch_size=None)
    observed = dict(observed)
    observed["diverged_at"] = jnp.broadcast_to(diverged_at, observed[observables[0].name].shape)
    return observed


def _cell(dim, signal, seed, optimizers, settings, *, layout, steps, stride, observables,
          tau_scaling, dtype, engine):
    """Every optimizer's records on one cell; the cell's data are drawn once for all of them."""
    key = conv_relu.cell_key(seed, dim)
    problem = conv_relu.build_problem(key, dim, signal, settings["noise_std"],
                                      settings["label_flip"], settings["init_std"], layout, dtype)
    trained = problem
    if engine == "span":
        # Train the coordinates of W − W0 in the span of the training patches (exact for the
        # rotation-equivariant rules that select_engine admits; observables read W itself).
        basis = conv_relu.patch_span_basis(problem)
        trained = conv_relu.coefficient_problem(problem, basis)
        observables = tuple(_in_weight_space(o, problem, basis) for o in observables)
    return {name: _run_cell_optimizer(trained, optimizers[name], seed, dim, settings,
                                      layout=layout, steps=steps, stride=stride,
                                      observables=observables, tau_scaling=tau_scaling,
                                      dtype=dtype)
            for name in sorted(optimizers)}


def _chunk_body(dims, signals, seeds, optimizers, settings, *, layout, steps, stride, observables,
                tau_scaling, dtype, engine):
    cell = lambda d, s, k: _cell(d, s, k, optimizers, settings, layout=layout, steps=steps,
                                 stride=stride, observables=observables, tau_scaling=tau_scaling,
                                 dtype=dtype, engine=engine)
    return jax.vmap(cell)(dims, signals, seeds)


_STATIC = ("layout", "steps", "stride", "observables", "tau_scaling", "dtype", "engine")

ENGINES = ("auto", "weights", "span")
"""How :func:`conv_relu_grid` trains a cell: ``"weights"`` trains W (every rule; each cell equals
``st.run`` bit for bit), ``"span"`` trains the coordinates of W − W0 in an orthonormal basis of
the training patches (rotation-equivariant rules only; equal to training W up to rounding, with
steps whose cost does not grow with d), ``"auto"`` takes ``"span"`` whenever it applies."""


def _span_preserving(optimizer: Optimizer) -> bool:
    """Whether the optimizer's update commutes with rotations of parameter space: GD/SGD and
    SAM/USAM in the Euclidean ball over a plain or momentum base (not Adam, not other norms)."""
    rule = optimizer.rule
    if isinstance(rule, optim.SharpnessAware):
        if rule.p != 2.0:
            return False
    elif not isinstance(rule, optim.GradientDescent):
        return False
    return rule.base.kind in ("plain", "momentum", "nesterov")


def select_engine(engine: str, optimizers: Mapping[str, Optimizer], observables, min_dim: int,
                  n_train: int, n_patches: int) -> str:
    """The engine a grid trains with: ``"span"`` or ``"weights"`` (see :data:`ENGINES`).

    ``"span"`` needs rotation-equivariant optimizers (GD, SGD, SAM and USAM with p = 2, plain or
    momentum base), observables without carried state (no WarmObservable: they are evaluated
    on W rebuilt at each record), and every dimension at least twice the span's size
    K = 1 + n(P−1), so that the patches are well conditioned as a basis.

    Args:
      engine: "auto", "weights" or "span".
      optimizers: dict name -> Optimizer.
      observables: the frozen observables (:func:`sharp_theory.dynamics.trajectory.as_observables`).
      min_dim: the grid's smallest d.
      n_train: training examples n.
      n_patches: patches per example P.

    Returns:
      "span" or "weights".

    Raises:
      ConfigError: an unknown engine, or ``engine="span"`` where it does not apply (the
        message says why).
    """
    check_choice("engine", engine, ENGINES)
    if engine == "weights":
        return engine
    span_size = 1 + n_train * (n_patches - 1)
    reasons = [f"optimizer {name!r} ({opt.name}) is not rotation-equivariant"
               for name, opt in sorted(optimizers.items()) if not _span_preserving(opt)]
    reasons += [f"observable {o.name!r} carries state between records"
                for o in observables if isinstance(o.fn, WarmObservable)]
    if min_dim < 2 * span_size:
        reasons.append(f"the smallest d = {min_dim} is below 2(1 + n(P-1)) = {2 * span_size}")
    if not reasons:
        return "span"
    if engine == "span":
        raise ConfigError("engine", engine, "'weights' or 'auto' here: " + "; ".join(reasons))
    return "weights"


# XLA:CPU compiler options of the chunk programs. LLVM's optimization level 1 instead of the
# default compiles a chunk program with ~30% less CPU time and runs it as fast, with bit-identical
# results (CPU-preset chunk, d = 800: 8.0-8.2 vs 11.3-11.8 CPU s to compile, 1.09-1.10 vs
# 1.09-1.14 CPU s per run; level 0 runs 2.3x slower). A cold CPU run is mostly compilation.
CPU_CHUNK_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
"""XLA compiler options of the grid's chunk programs on CPU (optimization level 1: about 30%
less compile time, the same run time, bit-identical results)."""


def _program(mesh: Mesh | None, statics: dict, platform: str):
    """The compiled chunk program: plain jit, or shard_map over the mesh's cell axis."""
    body = lambda d, s, k, opts, settings: _chunk_body(d, s, k, opts, settings, **statics)
    options = CPU_CHUNK_COMPILER_OPTIONS if platform == "cpu" else None
    if mesh is None:
        return jax.jit(body, compiler_options=options)
    spec = PartitionSpec(_AXIS)
    mapped = jax.shard_map(body, mesh=mesh, in_specs=(spec, spec, spec, PartitionSpec(),
                                                      PartitionSpec()),
                           out_specs=spec, check_vma=False)
    return jax.jit(mapped, compiler_options=options)


_PROGRAMS: dict = {}


def _cached_program(mesh, statics, platform: str):
    key = (None if mesh is None else tuple(d.id for d in mesh.devices.flat), platform,
           tuple(sorted((k, v) for k, v in statics.items() if k != "observables")),
           statics["observables"])
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _program(mesh, statics, platform)
    return _PROGRAMS[key]


_EXECUTABLES: dict = {}


def _arguments_signature(shared_args) -> tuple:
    """The optimizers' and settings' tree (names, rules) and leaf shapes: they select the
    program too, so a later call with other optimizers never reuses this one."""
    return (jax.tree_util.tree_structure(shared_args),
            tuple((np.shape(leaf), str(jnp.result_type(leaf)))
                  for leaf in jax.tree_util.tree_leaves(shared_args)))


def _executable_key(mesh, statics, args, shared) -> tuple:
    shapes = tuple((a.shape, str(a.dtype), str(a.sharding)) for a in args)
    return (None if mesh is None else tuple(d.id for d in mesh.devices.flat), _platform(args),
            tuple(sorted((k, v) for k, v in statics.items() if k != "observables")),
            statics["observables"], shapes, shared)


def _compile_ahead(mesh, needed, shared_args):
    """Compile the distinct programs of ``needed`` (``(statics, chunk args)`` pairs, in the order
    they will run) ahead: each is traced and lowered here, in the calling thread (so JAX's
    thread-local settings such as dtype promotion or matmul precision apply as in a plain call),
    and compiled by XLA in a thread pool, in parallel and while the first chunks already run.

    Returns:
      ``executable(statics, args)``: the compiled program for that chunk, waiting for it if its
      compilation is still running. Compiled programs are kept for later calls in this process.
    """
    from concurrent.futures import ThreadPoolExecutor

    shared = _arguments_signature(shared_args)

    def lower(statics, args):
        return _cached_program(mesh, statics, _platform(args)).lower(*args, *shared_args)

    futures = {}
    pending = []
    for statics, args in needed:
        key = _executable_key(mesh, statics, args, shared)
        if key not in _EXECUTABLES and key not in futures:
            futures[key] = None
            pending.append((key, statics, args))
    if pending:
        pool = ThreadPoolExecutor(max_workers=max(1, min(len(pending), _available_cores())),
                                  thread_name_prefix="conv-relu-compile")
        for key, statics, args in pending:
            futures[key] = pool.submit(lower(statics, args).compile)
        pool.shutdown(wait=False)

    def executable(statics, args):
        key = _executable_key(mesh, statics, args, shared)
        if key not in _EXECUTABLES:
            future = futures.get(key)
            _EXECUTABLES[key] = (future.result() if future is not None
                                 else lower(statics, args).compile())
        return _EXECUTABLES[key]

    return executable


def _platform(args) -> str:
    return next(iter(args[0].sharding.device_set)).platform


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def select_devices(device: str | None):
    """The devices to spread cells over: all of ``device``'s platform, or JAX's default platform.

    Args:
      device: "cpu", "gpu", or None for JAX's default platform.

    Returns:
      A tuple of JAX devices (at least one).

    Raises:
      ConfigError: an unknown platform name, or a platform with no device.
    """
    if device is None:
        return tuple(jax.devices())
    check_choice("device", device, ("cpu", "gpu"))
    try:
        devices = tuple(jax.devices(device))
    except RuntimeError:
        devices = ()
    if not devices:
        raise ConfigError("device", device, "a platform JAX can see: " +
                          ", ".join(sorted({d.platform for d in jax.devices()})))
    return devices


# Training data per device and chunk on CPU (about 3 MiB: six cells of 20 x 2 x 1600 doubles).
CPU_CELL_DATA_BYTES = 3 << 20
"""Training data per device and chunk on CPU, in bytes (bounds the chunk size there)."""


LADDER_RATIO = {"weights": 2, "span": 4}
"""Ratio between neighbouring sizes of the padding ladder, per engine. Training W costs time
proportional to the padded d at every step, so the weights engine pads finely (ratio 2, 1.32x
padded work on the CPU preset); the span engine pays for d only when drawing a cell and at its
records, so fewer, coarser sizes (ratio 4) save more compilation than they cost in running
(benchmarks/README.md)."""


def padded_dimension(dim: int, d_max: int, ratio: int = 2) -> int:
    """The ladder size ``ceil(d_max / ratio^k)`` (largest k) that still holds ``dim`` coordinates.

    Cells are padded to a few sizes so that one compiled program serves many dimensions.

    Args:
      dim: the cell's patch dimension (1 ≤ dim ≤ d_max).
      d_max: the largest dimension of the grid.
      ratio: the ratio between neighbouring ladder sizes (an int >= 2).

    Returns:
      The padded size, an int with ``dim ≤ size ≤ d_max``.

    Examples:
      >>> from sharp_theory.studies.phase_diagram import padded_dimension
      >>> [padded_dimension(d, 1600) for d in (100, 200, 201, 1600)]
      [100, 200, 400, 1600]
      >>> [padded_dimension(d, 1600, ratio=4) for d in (100, 101, 400, 401)]
      [100, 400, 400, 1600]
    """
    size = d_max
    while math.ceil(size / ratio) >= dim:
        size = math.ceil(size / ratio)
    return int(size)


def cell_bytes(layout: conv_relu.ConvReluLayout, n_records: int, n_observables: int,
               itemsize: int = 8) -> int:
    """A generous estimate of the memory one cell needs while training, in bytes.

    Args:
      layout: the grid's :class:`sharp_theory.problems.conv_relu.ConvReluLayout` (sizes and
        ``d_max``).
      n_records: the number of recorded steps.
      n_observables: the number of observables recorded.
      itemsize: bytes per number (8 for float64).

    Returns:
      The estimate, an int (used to choose the chunk size within a memory budget).
    """
    n, patches, m, d = layout.n_train, layout.n_patches, layout.n_filters, layout.d_max
    per_coordinate = (2 * n * patches          # training patches and a gathered mini-batch
                      + 12 * 2 * m             # W, W0, gradients, ascent point, state, carries
                      + 3 * (1 + n * (patches - 1)))  # decomposition basis and products
    test = layout.n_test * (patches - 1) * 2 * m * 3
    return 4 * itemsize * (per_coordinate * d + test + n_records * n_observables)


def _fingerprint(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _save_chunk(path: Path, arrays: dict) -> None:
    """Write a chunk's arrays (an .npz) and then their SHA-256 (``NAME.npz.sha256``), each
    atomically: a chunk counts as saved once its checksum file exists."""
    import io

    flat = {f"{opt}/{name}": value for opt, values in arrays.items() for name, value in values.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **flat)
    content = buffer.getvalue()
    _checksum_path(path).unlink(missing_ok=True)
    write_atomic(path, lambda temporary: Path(temporary).write_bytes(content))
    digest = hashlib.sha256(content).hexdigest()
    write_atomic(_checksum_path(path), lambda temporary: Path(temporary).write_text(digest))


def _load_chunk(path: Path) -> dict | None:
    """A saved chunk's arrays, or None when it was never completed; a chunk whose checksum does
    not match or that cannot be read is also None, with a one-line note (it is computed again).
    Arrays are read with ``allow_pickle=False``: a chunk file can never run code."""
    import io

    try:
        expected = _checksum_path(path).read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        expected = ""
    try:
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != expected:
            raise ValueError("its checksum does not match its content")
        out: dict = {}
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            for key in data.files:
                opt, name = key.split("/", 1)
                out.setdefault(opt, {})[name] = np.array(data[key])
        return out
    except (OSError, ValueError) as error:
        print(f"sharp-theory: note: saved chunk {path.name} is not used ({error}); computing it "
              "again", file=sys.stderr)
        return None


def _check_optimizers(optimizers) -> dict:
    if not isinstance(optimizers, Mapping) or not optimizers:
        raise ConfigError("optimizers", type(optimizers).__name__,
                          "a non-empty dict name -> sharp_theory Optimizer")
    for name, optimizer in optimizers.items():
        if not isinstance(optimizer, Optimizer):
            raise ConfigError(f"optimizers[{name!r}]", type(optimizer).__name__, "an Optimizer")
        if "/" in str(name):
            raise ConfigError("optimizers", name, "names without '/'")
    return dict(optimizers)


def _positive_sorted(name, values, integer):
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ConfigError(name, values, "a non-empty 1-D sequence")
    if integer:
        if not np.issubdtype(array.dtype, np.integer):
            raise ConfigError(name, values, "integers")
        if np.any(array < 2):
            raise ConfigError(name, values, "integers >= 2")
    else:
        check_positive(name, array)
    return array


def _gather(array, multi_host: bool) -> np.ndarray:
    if multi_host:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(array)


def _place(values: np.ndarray, mesh: Mesh | None, device):
    if mesh is None:
        return jax.device_put(values, device)
    sharding = NamedSharding(mesh, PartitionSpec(_AXIS))
    return jax.make_array_from_callback(values.shape, sharding, lambda index: values[index])


def conv_relu_grid(dims, signal_strengths, optimizers: Mapping[str, Optimizer], *, steps: int,
                   repeats: int = 3, seed: int = 0, stride: int | None = None,
                   n_train: int = 20, n_test: int = 1000, n_patches: int = 2, n_filters: int = 10,
                   noise_std: float = 1.0, label_flip: float = 0.1, init_std: float = 0.01,
                   isotropic: bool = False, tau_scaling: str = "constant", observe=None,
                   chunk_size: int | None = None, memory_budget_bytes: int | None = None,
                   checkpoint_dir=None, device: str | None = None, shard: bool = True,
                   progress: bool | None = None, max_new_chunks: int | None = None,
                   dtype=None, engine: str = "auto") -> GridResult:
    """Train every optimizer on every (d, ‖μ‖, repeat) cell of a conv-ReLU phase diagram.

    Args:
      dims: patch dimensions d (integers >= 2); every cell is padded to ``max(dims)``.
      signal_strengths: ‖μ‖ values (> 0).
      optimizers: dict name -> Optimizer (e.g. ``{"sgd": st.optim.sgd(0.1, batch_size=10),
        "sam": st.optim.sam(0.1, 1.0, batch_size=10)}``); batch sizes are the optimizers'.
      steps: training steps per run.
      repeats: independent repeats per cell; repeat r uses seed ``seed + r`` (data, init and
        mini-batch order; see :func:`sharp_theory.problems.conv_relu.conv_relu_signal_noise`).
      seed: the base integer seed (>= 0); repeat r of every cell uses ``seed + r``.
      stride: record every ``stride`` steps (default steps // 10).
      n_train: training examples per cell.
      n_test: test examples per cell.
      n_patches: patches P per example (one signal patch, P − 1 noise patches).
      n_filters: filters m per class.
      noise_std: standard deviation σ_p of the noise patches (> 0).
      label_flip: probability that a training label is flipped, in [0, 0.5).
      init_std: standard deviation of the initial filter entries (> 0).
      isotropic: noise covariance σ_p² I (True) instead of σ_p²(I − μμᵀ/‖μ‖²), noise
        orthogonal to μ (False) (all as for :func:`sharp_theory.problems.conv_relu_signal_noise`).
      tau_scaling: "constant" (SAM's ``rho`` is τ itself) or "paper" (τ = rho · m√B/(Pσ_p√d),
        the scale of Chen et al. 2023, Thm 4.1).
      observe: dict name -> fn(params, problem, state) (default :data:`DEFAULT_OBSERVABLES`).
      chunk_size: cells per compiled call (default: as many as ``memory_budget_bytes`` allows).
      memory_budget_bytes: memory for one chunk (default 1 GiB on CPU, a quarter of the device
        memory on GPU).
      checkpoint_dir: folder for resumable chunks (None: no checkpoints).
      device: "cpu", "gpu" or None (JAX's default platform).
      shard: split each chunk's cells over all devices of that platform.
      progress: show a progress bar (default: when stderr is a terminal or
        SHARP_THEORY_PROGRESS is set).
      max_new_chunks: compute at most this many new chunks, then return (``complete=False``);
        a later call with the same arguments continues.
      dtype: float dtype (default float64 when x64 is on).
      engine: "auto" (default), "weights" or "span" (:data:`ENGINES`, :func:`select_engine`):
        with "span" each step costs O(n P m K), K = 1 + n(P−1), instead of O(n P m d), and the
        records equal those of "weights" up to rounding (not bit for bit); the engine used is
        in ``GridResult.config["engine"]``. With "span", observables receive W rebuilt from
        the coefficients, and ``state.optimizer_state`` in coefficient coordinates.

    Returns:
      A :class:`GridResult` with arrays (n_dims, n_signals, repeats, n_records) per optimizer and
      observable (plus ``diverged_at``).

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Thms 4.1 and 4.3 (the phase diagram).
    """
    started = time.perf_counter()
    dims = _positive_sorted("dims", dims, integer=True)
    signals = _positive_sorted("signal_strengths", signal_strengths, integer=False).astype(float)
    optimizers = _check_optimizers(optimizers)
    steps = check_int("steps", steps, minimum=1)
    repeats = check_int("repeats", repeats, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    stride = max(1, steps // 10) if stride is None else check_int("stride", stride, minimum=1)
    conv_relu.check_settings(int(dims.max()), float(signals.max()), n_train, n_test, n_patches,
                             n_filters, noise_std, label_flip, init_std)
    check_choice("tau_scaling", tau_scaling, ("constant", "paper"))
    if chunk_size is not None:
        check_int("chunk_size", chunk_size, minimum=1)
    if max_new_chunks is not None:
        check_int("max_new_chunks", max_new_chunks, minimum=0)
    if memory_budget_bytes is not None:
        check_int("memory_budget_bytes", memory_budget_bytes, minimum=1)
    observables = as_observables(DEFAULT_OBSERVABLES if observe is None else observe)
    engine = select_engine(engine, optimizers, observables, int(dims.min()), int(n_train),
                           int(n_patches))
    devices = select_devices(device)
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    layout = conv_relu.ConvReluLayout(int(n_train), int(n_test), int(n_patches), int(n_filters),
                                      int(dims.max()), bool(isotropic))
    recorded = record_steps(steps, stride)

    # The flat cell table: (dim, signal, seed) in C order of (dims, signals, repeats).
    dim_index, signal_index, repeat_index = np.meshgrid(
        np.arange(dims.size), np.arange(signals.size), np.arange(repeats), indexing="ij")
    cell_dims = dims[dim_index.ravel()].astype(np.int32)
    cell_signals = signals[signal_index.ravel()].astype(dtype)
    cell_seeds = (seed + repeat_index.ravel()).astype(np.int32)
    n_cells = cell_dims.size

    use_mesh = shard and len(devices) > 1
    n_shards = len(devices) if use_mesh else 1
    if chunk_size is None:
        budget = memory_budget_bytes or _default_budget(devices[0])
        per_cell = cell_bytes(layout, recorded.size, len(observables), dtype.itemsize)
        chunk_size = int(min(n_cells, max(1, budget // (per_cell * len(optimizers)))))
        if devices[0].platform == "cpu":
            # On CPU, chunks whose training data stay in cache run faster than the largest chunk
            # memory allows (CPU preset: 7.7 s with 12 cells per chunk, 9.8 s with 24).
            data_bytes = layout.n_train * layout.n_patches * layout.d_max * dtype.itemsize
            per_device = max(1, CPU_CELL_DATA_BYTES // data_bytes)
            chunk_size = int(min(chunk_size, per_device * n_shards))
    settings_payload = {
        "dims": dims.tolist(), "signal_strengths": signals.tolist(), "repeats": repeats,
        "seed": seed, "steps": steps, "stride": stride, "layout": dataclasses.asdict(layout),
        "noise_std": float(noise_std), "label_flip": float(label_flip),
        "init_std": float(init_std), "tau_scaling": tau_scaling, "dtype": dtype.name,
        "observables": [o.name for o in observables], "engine": engine,
        "optimizers": {name: {"rule": repr(opt.rule), "batch_size": opt.batch_size,
                              "replace": opt.replace,
                              "hparams": {k: np.asarray(v).tolist() for k, v in opt.hparams.items()}}
                       for name, opt in sorted(optimizers.items())},
        "format": _FORMAT_VERSION,
    }
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = Path(checkpoint_dir)
        chunk_size = _open_checkpoint(checkpoint, settings_payload, chunk_size)
    n_chunks = math.ceil(n_cells / chunk_size)
    padded_chunk = math.ceil(chunk_size / n_shards) * n_shards

    mesh = Mesh(np.asarray(devices), (_AXIS,)) if use_mesh else None
    statics = {"layout": layout, "steps": steps, "stride": stride, "observables": observables,
               "tau_scaling": tau_scaling, "dtype": dtype, "engine": engine}
    settings = {"noise_std": jnp.asarray(noise_std, dtype), "label_flip": jnp.asarray(label_flip, dtype),
                "init_std": jnp.asarray(init_std, dtype)}
    replicated = (lambda tree: jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))) \
        if mesh is not None else (lambda tree: jax.device_put(tree, devices[0]))
    placed_optimizers = replicated(optimizers)
    placed_settings = replicated(settings)
    multi_host = jax.process_count() > 1
    writer = jax.process_index() == 0

    names = [o.name for o in observables] + ["diverged_at"]
    full = {opt: {name: np.full((n_cells, recorded.size), np.nan) for name in names}
            for opt in optimizers}

    def bounds(index):
        return index * chunk_size, min(n_cells, (index + 1) * chunk_size)

    def chunk_path(index):
        return None if checkpoint is None else checkpoint / f"chunk_{index:06d}.npz"

    def chunk_args(index):
        lo, hi = bounds(index)
        take = np.minimum(np.arange(lo, lo + padded_chunk), hi - 1)  # pad with the last cell
        return [_place(a[take], mesh, devices[0]) for a in (cell_dims, cell_signals, cell_seeds)]

    def chunk_statics(index):
        # Cells are sorted by d, so the chunk's largest d is its last cell's.
        d_max = padded_dimension(int(cell_dims[bounds(index)[1] - 1]), layout.d_max,
                                 LADDER_RATIO[engine])
        return dict(statics, layout=dataclasses.replace(layout, d_max=d_max))

    saved_chunks = {index: _load_chunk(chunk_path(index)) for index in range(n_chunks)
                    if chunk_path(index) is not None and chunk_path(index).exists()}
    saved_chunks = {index: values for index, values in saved_chunks.items() if values is not None}
    to_compute = [index for index in range(n_chunks) if index not in saved_chunks]
    if max_new_chunks is not None:
        to_compute = to_compute[:max_new_chunks]
    # Every program this call needs (one per ladder size) is compiled ahead, in parallel threads,
    # while the first chunks already run: compilation dominates a cold run.
    executables = _compile_ahead(mesh, [(chunk_statics(i), chunk_args(i)) for i in to_compute],
                                 (placed_optimizers, placed_settings))
    loaded = computed = 0
    complete = True
    for index in progress_bar(range(n_chunks), "conv-relu grid (chunks)", n_chunks, progress):
        lo, hi = bounds(index)
        path = chunk_path(index)
        if index in saved_chunks:
            values = saved_chunks.pop(index)
            loaded += 1
        else:
            if index not in to_compute:
                complete = False
                continue
            args = chunk_args(index)
            program = executables(chunk_statics(index), args)
            raw = program(*args, placed_optimizers, placed_settings)
            values = {opt: {name: _gather(v, multi_host)[: hi - lo] for name, v in obs.items()}
                      for opt, obs in raw.items()}
            if path is not None and writer:
                _save_chunk(path, values)
            computed += 1
        for opt in optimizers:
            for name in names:
                full[opt][name][lo:hi] = values[opt][name]
    shape = (dims.size, signals.size, repeats, recorded.size)
    observed = {opt: {name: array.reshape(shape) for name, array in obs.items()}
                for opt, obs in full.items()}
    config = dict(settings_payload, chunk_size=chunk_size, n_cells=n_cells, n_chunks=n_chunks,
                  devices=[str(d) for d in devices], sharded=use_mesh)
    return GridResult(dims=dims, signal_strengths=signals, seeds=seed + np.arange(repeats),
                      steps=recorded, observed=observed, complete=complete, chunks_loaded=loaded,
                      chunks_computed=computed, wall_time_s=time.perf_counter() - started,
                      devices=tuple(str(d) for d in devices), config=config)


def _default_budget(device) -> int:
    if device.platform == "cpu":
        return 1 << 30
    try:
        limit = device.memory_stats()["bytes_limit"]
    except (AttributeError, KeyError, TypeError, RuntimeError):
        limit = 8 << 30
    return int(limit // 4)


def _open_checkpoint(folder: Path, payload: dict, chunk_size: int) -> int:
    """Create or verify the checkpoint manifest; returns the chunk size to use."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    fingerprint = _fingerprint(payload)
    if manifest.exists():
        stored = json.loads(manifest.read_text())
        if stored.get("fingerprint") != fingerprint:
            raise ConfigError("checkpoint_dir", str(folder),
                              "an empty folder or one holding this same sweep (its manifest has "
                              f"fingerprint {stored.get('fingerprint')}, these arguments give "
                              f"{fingerprint})")
        return int(stored["chunk_size"])  # resume with the original chunking
    if jax.process_index() == 0:
        text = json.dumps({"fingerprint": fingerprint, "chunk_size": chunk_size,
                           "settings": payload}, indent=1, default=str)
        write_atomic(manifest, lambda temporary: Path(temporary).write_text(text))
    return chunk_size


# --- named grids used by the benign-overfitting lab and the benchmark ---------------------------

PRESETS = {
    # CI and class: one compiled program (every d within one padding size of the span ladder,
    # every τ of the τ sweep already in the grid), 4 × 10 cells x 1 repeat x 100 steps: enough
    # premise cells and boundary points for the claims' own size guards to judge.
    "quick": {"dims": [int(round(d)) for d in np.geomspace(400, 1600, 4)],
              "signals": list(np.geomspace(0.5, 12.0, 10)), "repeats": 1,
              "steps": 100, "stride": 10, "n_train": 20, "lr": 0.1, "batch_size": 10, "tau": 1.0,
              "tau_scaling": "paper", "taus": [0.0, 0.1, 1.0]},
    # The CPU default: 16 × 16 cells × 3 repeats × (SGD, SAM), a few minutes on 2 cores.
    "cpu": {"dims": [int(round(d)) for d in np.geomspace(100, 1600, 16)],
            "signals": list(np.geomspace(0.5, 12.0, 16)), "repeats": 3, "steps": 100,
            "stride": 10, "n_train": 20, "lr": 0.1, "batch_size": 10, "tau": 1.0,
            "tau_scaling": "paper", "taus": [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]},
    # The paper-size grid (>= 50 × 50 × 10) for a GPU: `--grid paper --device gpu`.
    "paper": {"dims": [int(round(d)) for d in np.geomspace(100, 10000, 50)],
              "signals": list(np.geomspace(0.5, 20.0, 50)), "repeats": 10, "steps": 200,
              "stride": 20, "n_train": 20, "lr": 0.1, "batch_size": 10, "tau": 1.0,
              "tau_scaling": "paper", "taus": [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]},
}
"""Named grids: ``"quick"`` (CI, seconds), ``"cpu"`` (16 × 16 cells × 3 repeats, a few minutes on
2 cores) and ``"paper"`` (≥ 50 × 50 × 10, for a GPU); each gives the dims, signal strengths,
repeats, steps, stride, data sizes, learning rate, batch size and SAM radii.
"""


def preset_optimizers(spec: dict) -> dict:
    """SGD and SAM with the same batch size and learning rate, SAM's radius ``spec["tau"]``.

    Args:
      spec: a preset of :data:`PRESETS` (keys ``lr``, ``batch_size``, ``tau``).

    Returns:
      ``{"sgd": Optimizer, "sam": Optimizer}``.
    """
    return {"sgd": optim.sgd(spec["lr"], batch_size=spec["batch_size"]),
            "sam": optim.sam(spec["lr"], spec["tau"], batch_size=spec["batch_size"])}


# --- phase-diagram analysis -----------------------------------------------------------------------

def benign_boundary(mean_error: np.ndarray, signal_strengths, threshold: float) -> np.ndarray:
    """For each dimension (row), the smallest ‖μ‖ at which the mean test error falls to
    ``threshold``, by linear interpolation in log ‖μ‖ between the two grid cells around the
    first crossing from above. NaN for rows that never cross (always above or below).

    Args:
      mean_error: array (n_dims, n_signals), the mean test error of each cell.
      signal_strengths: the increasing ‖μ‖ grid.
      threshold: the error level that separates benign (below) from harmful (above).

    Returns:
      An array (n_dims,): the crossing ‖μ‖ of each row, NaN where it never crosses.

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Thms 4.1 and 4.3 (the benign/harmful boundary).
    """
    logs = np.log(np.asarray(signal_strengths, dtype=float))
    out = np.full(mean_error.shape[0], np.nan)
    for row, errors in enumerate(np.asarray(mean_error, dtype=float)):
        if errors[0] <= threshold:
            continue  # benign already at the smallest signal: no crossing inside the grid
        below = np.nonzero(errors <= threshold)[0]
        if below.size == 0:
            continue
        k = below[0]
        fraction = (errors[k - 1] - threshold) / (errors[k - 1] - errors[k])
        out[row] = np.exp(logs[k - 1] + fraction * (logs[k] - logs[k - 1]))
    return out


def fit_power_law(dims, boundary, confidence: float = 0.95) -> dict:
    """Least-squares fit ``log ‖μ‖* = a + slope · log d`` over the finite boundary points.

    Args:
      dims: the patch dimensions d (> 0), one per boundary point.
      boundary: the boundary ‖μ‖* per dimension (NaN entries are left out).
      confidence: the level of the slope's two-sided Student-t interval, in (0, 1).

    Returns:
      dict slope, intercept, ci_low, ci_high (two-sided Student-t interval for the slope),
      points (how many boundary points were used); NaNs when fewer than 3 points.

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023, Thms 4.1 and 4.3 (the boundary's power of d).
    """
    from scipy import stats

    dims = np.asarray(dims, dtype=float)
    boundary = np.asarray(boundary, dtype=float)
    keep = np.isfinite(boundary)
    points = int(keep.sum())
    if points < 3:
        return {"slope": float("nan"), "intercept": float("nan"), "ci_low": float("nan"),
                "ci_high": float("nan"), "points": points}
    x, y = np.log(dims[keep]), np.log(boundary[keep])
    centred = x - x.mean()
    slope = float(np.dot(centred, y - y.mean()) / np.dot(centred, centred))
    intercept = float(y.mean() - slope * x.mean())
    residuals = y - intercept - slope * x
    stderr = float(np.sqrt(np.dot(residuals, residuals) / (points - 2) / np.dot(centred, centred)))
    half = stats.t.ppf(0.5 + confidence / 2, points - 2) * stderr
    return {"slope": slope, "intercept": intercept, "ci_low": slope - half,
            "ci_high": slope + half, "points": points}
