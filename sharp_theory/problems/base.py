"""The Problem record shared by every model family.

A problem is a frozen dataclass pytree: arrays (initial parameters, constants such as a noise
level or a test set, a finite set of examples) are leaves, so a sweep can vmap over them; the
functions that define the model are static and compare by value or identity.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._pytree import pytree_dataclass, static_field
from ..errors import ConfigError, check_int


def data_key(key, step):
    """Key for the batch drawn at ``step`` (independent of the optimizer's key)."""
    return jax.random.fold_in(jax.random.fold_in(key, 0), step)


def epoch_key(key, epoch):
    return jax.random.fold_in(jax.random.fold_in(key, 1), epoch)


def optimizer_key(key, step):
    return jax.random.fold_in(jax.random.fold_in(key, 2), step)


def init_key(key):
    """Key for a run's random initialization (``run``/``sweep`` with ``init=``)."""
    return jax.random.fold_in(key, 3)


@pytree_dataclass
class Problem:
    """A differentiable objective with its data and initialization.

    Attributes:
      objective: static ``objective(params, batch, constants) -> scalar`` (mean over the batch).
      params0: the default initial parameters (a pytree of arrays).
      constants: dict of arrays the objective needs besides the batch (targets, noise level,
        test data, ...). Sweeps can vmap over any entry by name.
      examples: a finite data set (pytree with a leading example axis) or None.
      sampler: static ``sampler(constants, key, batch_size) -> batch`` for problems that draw
        fresh examples every step (noise), or None.
      population: static ``population(params, constants) -> scalar``: the expected loss in closed
        form for fresh-noise problems (None: the full-data loss is used).
      initializer: static ``initializer(key, constants) -> params`` for random initialization
        (None: ``init`` returns ``params0``).
      name: a short name.
      default_batch_size: batch size for fresh-noise problems when the optimizer sets none.
      outputs_fn: optional static ``outputs_fn(params, batch, constants) -> array``, the model's
        outputs F(w) on a batch (predictions, logits, a merged weight matrix).
      loss_of_outputs_fn: optional static ``loss_of_outputs_fn(outputs, batch, constants) ->
        scalar`` with ``loss_of_outputs_fn(outputs_fn(w, b, c), b, c) == objective(w, b, c)``.
        Rules that need the split (Functional-SAM, the SAF penalty) read it from the problem.
    """

    objective: Callable = static_field()
    params0: Any = None
    constants: dict = dataclasses.field(default_factory=dict)
    examples: Any = None
    sampler: Callable | None = static_field(default=None)
    population: Callable | None = static_field(default=None)
    initializer: Callable | None = static_field(default=None)
    name: str = static_field(default="problem")
    default_batch_size: int | None = static_field(default=None)
    outputs_fn: Callable | None = static_field(default=None)
    loss_of_outputs_fn: Callable | None = static_field(default=None)

    def __repr__(self) -> str:
        """Shapes, not data: the name, the parameter shapes, the example count, the constants."""
        shapes = jax.tree_util.tree_map(lambda leaf: tuple(jnp.shape(leaf)), self.params0)
        data = ("fresh noise" if self.sampler is not None else
                "no data" if self.examples is None else f"{self.n_examples} examples")
        constants = ", ".join(sorted(self.constants)) or "none"
        return (f"Problem(name={self.name!r}, params0 shapes={shapes}, {data}, "
                f"constants: {constants})")

    def loss(self, params, batch):
        """The training loss on one batch: ``loss(params, batch)``."""
        return self.objective(params, batch, self.constants)

    @property
    def has_outputs(self) -> bool:
        """Whether the problem declares its outputs and the loss as a function of them."""
        return self.outputs_fn is not None and self.loss_of_outputs_fn is not None

    def outputs(self, params, batch):
        """The model's outputs F(w) on ``batch`` (a ConfigError if the problem declares none)."""
        if self.outputs_fn is None:
            raise ConfigError("problem", self.name, "a problem that declares outputs_fn")
        return self.outputs_fn(params, batch, self.constants)

    def loss_of_outputs(self, outputs, batch):
        """The loss as a function of the outputs: ``loss(w, b) == loss_of_outputs(F(w, b), b)``."""
        if self.loss_of_outputs_fn is None:
            raise ConfigError("problem", self.name, "a problem that declares loss_of_outputs_fn")
        return self.loss_of_outputs_fn(outputs, batch, self.constants)

    def loss_function(self) -> "ProblemLoss":
        """``loss(params, batch)`` as the callable the runner hands to a step rule.

        It computes exactly :meth:`loss` and also carries :meth:`outputs`,
        :meth:`loss_of_outputs` and :attr:`has_outputs`, so a rule that needs the output split
        finds it without a model of its own.
        """
        return ProblemLoss(self)

    def init(self, key):
        """Initial parameters: ``params0``, or a random draw when the problem has an initializer."""
        if self.initializer is None:
            return self.params0
        return self.initializer(key, self.constants)

    @property
    def n_examples(self) -> int | None:
        if self.examples is None:
            return None
        return jax.tree_util.tree_leaves(self.examples)[0].shape[0]

    def batch(self, key, step, batch_size=None, replace=False):
        """The batch used at ``step`` of a run keyed by ``key``.

        Fresh-noise problems draw ``batch_size`` new examples. Finite data sets return all
        examples when ``batch_size`` is None, else a mini-batch drawn uniformly with replacement
        or as consecutive slices of a per-epoch permutation (shuffled epochs; the last partial
        slice of each epoch is dropped).
        """
        if self.sampler is not None:
            size = batch_size or self.default_batch_size or 1
            return self.sampler(self.constants, data_key(key, step), size)
        if self.examples is None:
            return None
        n = self.n_examples
        if batch_size is None or (batch_size >= n and not replace):
            return self.examples
        if replace:
            index = jax.random.randint(data_key(key, step), (batch_size,), 0, n)
        else:
            per_epoch = n // batch_size
            epoch, position = step // per_epoch, step % per_epoch
            order = jax.random.permutation(epoch_key(key, epoch), n)
            index = jax.lax.dynamic_slice(order, (position * batch_size,), (batch_size,))
        return jax.tree_util.tree_map(lambda x: x[index], self.examples)

    def full_batch(self):
        """All examples (None for fresh-noise or data-free problems)."""
        return self.examples

    def evaluation_loss(self, params):
        """The loss used for reporting: closed-form population loss, else the full-data loss."""
        if self.population is not None:
            return self.population(params, self.constants)
        return self.loss(params, self.examples)

    def with_constants(self, **values) -> "Problem":
        """A copy with some constants replaced (same structure: no recompilation)."""
        for name in values:
            if name not in self.constants:
                raise ConfigError("constant", name, "one of " + ", ".join(sorted(self.constants)))
        merged = dict(self.constants)
        # Keep each constant's dtype (and shape): same abstract signature, so no recompilation.
        merged.update({k: jnp.asarray(v, dtype=jnp.asarray(self.constants[k]).dtype)
                       for k, v in values.items()})
        return dataclasses.replace(self, constants=merged)


@dataclasses.dataclass(frozen=True)
class ProblemLoss:
    """A problem's loss as a callable that also carries its output split (see
    :meth:`Problem.loss_function`)."""

    problem: Problem

    def __call__(self, params, batch):
        return self.problem.loss(params, batch)

    @property
    def has_outputs(self) -> bool:
        return self.problem.has_outputs

    def outputs(self, params, batch):
        return self.problem.outputs(params, batch)

    def loss_of_outputs(self, outputs, batch):
        return self.problem.loss_of_outputs(outputs, batch)


@dataclasses.dataclass(frozen=True)
class _UserObjective:
    """Adapts a user's ``loss_fn(params, batch)`` to the objective signature."""

    loss_fn: Callable

    def __call__(self, params, batch, constants):
        return self.loss_fn(params, batch)


@dataclasses.dataclass(frozen=True)
class _UserOutputs:
    """Adapts a user's ``outputs(params, batch)`` to the ``outputs_fn`` signature."""

    outputs: Callable

    def __call__(self, params, batch, constants):
        return self.outputs(params, batch)


@dataclasses.dataclass(frozen=True)
class _UserLossOfOutputs:
    """Adapts a user's ``loss_of_outputs(outputs, batch)`` to the ``loss_of_outputs_fn`` signature."""

    loss_of_outputs: Callable

    def __call__(self, outputs, batch, constants):
        return self.loss_of_outputs(outputs, batch)


def _check_pytree_finite(parameter, tree):
    """Every leaf numeric and finite; the first bad entry is named by leaf path and index."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        array = np.asarray(leaf)
        name = parameter + jax.tree_util.keystr(path)
        if not np.issubdtype(array.dtype, np.number):
            raise ConfigError(name, array.dtype, "numeric arrays")
        if np.issubdtype(array.dtype, np.floating):
            bad = np.argwhere(~np.isfinite(array))
            if bad.size:
                index = tuple(int(i) for i in bad[0])
                raise ConfigError(name, f"{array[index]} at index {index if len(index) != 1 else index[0]}",
                                  f"finite values ({len(bad)} non-finite of {array.size})")


FLOAT_DTYPES = ("float64", "float32")


def as_policy_dtype(tree, dtype: str):
    """Every floating leaf of ``tree`` cast to ``dtype`` (integer leaves, such as labels, kept).

    The dtype policy: problems built from user code run in float64 (float32 leaves are upcast),
    unless the user opts into float32 with ``dtype="float32"``.
    """
    def cast(leaf):
        leaf = jnp.asarray(leaf)
        return leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf
    return jax.tree_util.tree_map(cast, tree)


def _shapes(tree):
    return jax.tree_util.tree_map(lambda leaf: tuple(jnp.shape(leaf)), tree)


def check_loss_at_start(loss_fn: Callable, params0, data, *, parameter: str = "loss_fn") -> None:
    """Call the loss once at ``params0`` on a batch of two examples (or ``None``), before any run.

    Shapes are checked first without computing (``jax.eval_shape``), then the value.

    Raises:
      ConfigError: the call fails (shapes that do not fit: the message shows the parameter and
        batch shapes and JAX's reason), the output is not a scalar, or it is not finite.
    """
    batch = None if data is None else jax.tree_util.tree_map(lambda leaf: leaf[:2], data)
    try:
        shape = jax.eval_shape(loss_fn, params0, batch)
    except Exception as error:  # the user's function failed: bad input, reported in one line
        reason = " ".join(str(error).split())
        reason = reason if len(reason) <= 240 else reason[:237] + "..."
        raise ConfigError(parameter, getattr(loss_fn, "__name__", "loss_fn"),
                          f"a loss that runs on params0 of shapes {_shapes(params0)} and a batch "
                          f"of shapes {_shapes(batch)} (it failed: {reason})") from None
    if not (hasattr(shape, "shape") and shape.shape == ()):
        got = getattr(shape, "shape", type(shape).__name__)
        raise ConfigError(parameter, f"an output of shape {got}",
                          "a scalar loss (average the per-example losses, e.g. jnp.mean(...))")
    value = loss_fn(params0, batch)
    if not bool(jnp.isfinite(value)):
        raise ConfigError(parameter, f"{float(value)} at params0",
                          "a finite loss at the initial parameters")


def from_loss(loss_fn: Callable, params0, data=None, *, name: str = "from_loss", outputs=None,
              loss_of_outputs=None, dtype: str = "float64") -> Problem:
    """Wrap any differentiable ``loss_fn(params, batch) -> scalar`` as a problem.

    The problem is checked once here: the loss is called at ``params0`` on a batch of two
    examples and must return a finite scalar; a call that fails (shapes that do not fit), a
    vector output or a NaN in the data is refused in one line naming the parameter, the shapes
    or the index.

    Dtype policy: the problem runs in float64 (exact checks need it): float32 leaves of
    ``params0`` and ``data`` are upcast; integer leaves (labels) are kept. ``dtype="float32"``
    opts into float32 explicitly (every floating leaf is cast to float32).

    Args:
      loss_fn: the loss; it must average over the batch's leading axis when ``data`` is given
        (so mini-batches and m-sharpness mean what they say). With ``data=None`` it is called
        with ``batch=None``.
      params0: initial parameters (any pytree of float arrays).
      data: optional pytree of arrays sharing a leading example axis.
      name: label used in results.
      outputs: optional ``outputs(params, batch)``, the model's outputs F(w) (given together
        with ``loss_of_outputs``, or neither).
      loss_of_outputs: optional ``loss_of_outputs(outputs, batch)`` with
        ``loss_of_outputs(outputs(w, b), b) == loss_fn(w, b)``: the output split Functional-SAM
        and the SAF penalty use.
      dtype: "float64" (default) or "float32", the floating dtype of the parameters and data.

    Returns:
      A :class:`Problem` usable with every optimizer, ``run``, ``sweep`` and measure.

    Raises:
      ConfigError: a bad argument, or a loss that fails, is not a scalar or not finite at
        ``params0``, before any run.
    """
    if not callable(loss_fn):
        raise ConfigError("loss_fn", loss_fn, "a callable loss_fn(params, batch)")
    if dtype not in FLOAT_DTYPES:
        raise ConfigError("dtype", dtype, "'float64' (default) or 'float32'")
    params0 = jax.tree_util.tree_map(jnp.asarray, params0)
    _check_pytree_finite("params0", params0)
    params0 = as_policy_dtype(params0, dtype)
    if data is not None:
        data = jax.tree_util.tree_map(jnp.asarray, data)
        _check_pytree_finite("data", data)
        data = as_policy_dtype(data, dtype)
        sizes = {leaf.shape[0] if leaf.ndim else None for leaf in jax.tree_util.tree_leaves(data)}
        if len(sizes) != 1 or None in sizes:
            raise ConfigError("data", sorted(map(str, sizes)),
                              "arrays that share one leading example axis")
    if (outputs is None) != (loss_of_outputs is None) or not all(
            f is None or callable(f) for f in (outputs, loss_of_outputs)):
        raise ConfigError("outputs", outputs, "callables outputs and loss_of_outputs, both or neither")
    check_loss_at_start(loss_fn, params0, data)
    return Problem(objective=_UserObjective(loss_fn), params0=params0, constants={},
                   examples=data, name=name,
                   outputs_fn=None if outputs is None else _UserOutputs(outputs),
                   loss_of_outputs_fn=None if outputs is None else _UserLossOfOutputs(loss_of_outputs))


def check_batch_size(batch_size):
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
