"""Problems from models of the JAX ecosystem: Equinox, Flax (NNX or Linen) and Haiku.

:func:`from_model` splits a model into its trainable arrays (the problem's parameters, a pytree
like any other) and the rest (structure, static settings), and builds the problem with
:func:`~sharp_theory.problems.from_loss`: exact Hessians, sweeps and the fuzzer then work
unchanged. The libraries are optional (``pip install 'sharp-theory[models]'``) and imported only
when a model of theirs is given.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable

import jax

from ..errors import ConfigError
from .base import Problem, from_loss


@dataclasses.dataclass(frozen=True)
class ModelLoss:
    """``loss(params, (inputs, targets)) = loss_of_outputs(apply(params, inputs), targets)``.

    Attributes:
      apply: ``apply(params, inputs) -> outputs`` for a batch of inputs.
      loss_of_outputs: the user's ``loss(outputs, targets) -> scalar`` (a mean over the batch).
    """

    apply: Callable
    loss_of_outputs: Callable

    def __call__(self, params, batch):
        inputs, targets = batch
        return self.loss_of_outputs(self.apply(params, inputs), targets)

    def outputs(self, params, batch):
        return self.apply(params, batch[0])

    def loss_of_model_outputs(self, outputs, batch):
        return self.loss_of_outputs(outputs, batch[1])


@dataclasses.dataclass(frozen=True, eq=False)
class _EquinoxApply:
    static: Any

    def __call__(self, params, inputs):
        import equinox as eqx
        return jax.vmap(eqx.combine(params, self.static))(inputs)


@dataclasses.dataclass(frozen=True, eq=False)
class _NnxApply:
    graphdef: Any
    rest: Any

    def __call__(self, params, inputs):
        from flax import nnx
        return nnx.merge(self.graphdef, params, self.rest)(inputs)


@dataclasses.dataclass(frozen=True, eq=False)
class _LinenApply:
    module: Any

    def __call__(self, params, inputs):
        return self.module.apply(params, inputs)


@dataclasses.dataclass(frozen=True, eq=False)
class _HaikuApply:
    transformed: Any

    def __call__(self, params, inputs):
        return self.transformed.apply(params, None, inputs)


def _library_of(model) -> str | None:
    """Which library ``model`` comes from (checked only against libraries already imported)."""
    if "equinox" in sys.modules and isinstance(model, sys.modules["equinox"].Module):
        return "equinox"
    if "flax.nnx" in sys.modules and isinstance(model, sys.modules["flax.nnx"].Module):
        return "nnx"
    if "flax.linen" in sys.modules and isinstance(model, sys.modules["flax.linen"].Module):
        return "linen"
    if "haiku" in sys.modules and isinstance(model, sys.modules["haiku"].Transformed):
        return "haiku"
    return None


def from_model(model, loss: Callable, data, *, params=None, name: str = "from_model",
               dtype: str = "float64") -> Problem:
    """A problem whose parameters are a model's trainable arrays.

    ``loss(outputs, targets) -> scalar`` scores the model's outputs on a batch of
    ``data = (inputs, targets)`` (a mean over the batch, so mini-batches mean what they say).
    The problem declares the output split, so Functional-SAM and the SAF penalty work too.

    Args:
      model: one of
        * an Equinox module (its inexact arrays are the parameters; it is called on one
          example, and vmapped over the batch);
        * a Flax NNX module (its ``nnx.Param`` state; called on a batch);
        * a Flax Linen module, with ``params=`` the variables from ``module.init`` (called as
          ``module.apply(params, inputs)``);
        * a Haiku ``hk.transform``-ed function, with ``params=`` from its ``init`` (called as
          ``apply(params, None, inputs)``).
      loss: ``loss(outputs, targets) -> scalar``.
      data: ``(inputs, targets)``, arrays sharing a leading example axis.
      params: the parameters, for Linen and Haiku (whose modules hold none); not for the others.
      name: label used in results.
      dtype: "float64" (default: float32 parameters and data are upcast) or "float32".

    Returns:
      A :class:`Problem` (see :func:`~sharp_theory.problems.from_loss`, which checks the loss
      once at the initial parameters).

    Raises:
      ConfigError: a model of none of these kinds, ``params`` missing or superfluous, ``data``
        not a pair, or a loss that fails at the initial parameters.

    Examples:
      >>> import equinox as eqx, jax, jax.numpy as jnp  # doctest: +SKIP
      >>> net = eqx.nn.MLP(3, 1, 8, 1, key=jax.random.key(0))  # doctest: +SKIP
      >>> problem = st.problems.from_model(net, lambda y, t: jnp.mean((y[:, 0] - t) ** 2),
      ...                                  (X, y))  # doctest: +SKIP
    """
    if not callable(loss):
        raise ConfigError("loss", loss, "a callable loss(outputs, targets) -> scalar")
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ConfigError("data", type(data).__name__, "a pair (inputs, targets)")
    library = _library_of(model)
    needs_params = library in ("linen", "haiku")
    if library is None:
        raise ConfigError("model", type(model).__name__,
                          "an Equinox module, a Flax NNX or Linen module, or a Haiku "
                          "transformed function (hk.transform)")
    if needs_params and params is None:
        raise ConfigError("params", None, f"the {library} model's parameters (from its init)")
    if not needs_params and params is not None:
        raise ConfigError("params", "given", f"None: the {library} model holds its parameters")
    if library == "equinox":
        import equinox as eqx
        params, static = eqx.partition(model, eqx.is_inexact_array)
        apply = _EquinoxApply(static)
    elif library == "nnx":
        from flax import nnx
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        apply = _NnxApply(graphdef, rest)
    elif library == "linen":
        apply = _LinenApply(model)
    else:
        apply = _HaikuApply(model)
    objective = ModelLoss(apply, loss)
    return from_loss(objective, params, tuple(data), name=name, outputs=objective.outputs,
                     loss_of_outputs=objective.loss_of_model_outputs, dtype=dtype)
