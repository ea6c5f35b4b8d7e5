"""The optimizer contract and the pluggable base step.

Every step rule has one signature::

    state = optimizer.init(params)
    params, state, info = optimizer.step(params, state, loss_fn, batch, hparams, key)

``hparams`` is a dict of arrays (lr, rho, alpha, ...). It is a pytree leaf of :class:`Optimizer`,
so ``jax.vmap`` sweeps a grid of values and changing a value never recompiles. The *rule* (which
update, which base, which norm) is static and compares by value.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from .._pytree import pytree_dataclass, static_field
from ..errors import ConfigError, check_nonnegative, check_positive


@dataclasses.dataclass(frozen=True)
class Base:
    """The base update that turns a (possibly SAM-modified) gradient into a step direction.

    kind: ``"plain"`` (identity, so the step is ``w - lr * g``), ``"momentum"`` (heavy ball,
    ``optax.trace``), ``"nesterov"``, ``"adam"`` (``optax.scale_by_adam``) or ``"custom"`` with a
    user-supplied optax transformation that does not include the learning rate.
    """

    kind: str = "plain"
    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    transform: Any = None  # optax.GradientTransformation for kind="custom"

    def make(self) -> optax.GradientTransformation:
        if self.kind == "plain":
            return optax.identity()
        if self.kind == "momentum":
            return optax.trace(decay=self.momentum, nesterov=False)
        if self.kind == "nesterov":
            return optax.trace(decay=self.momentum, nesterov=True)
        if self.kind == "adam":
            return optax.scale_by_adam(b1=self.b1, b2=self.b2, eps=self.eps)
        if self.kind == "custom":
            return self.transform
        raise ConfigError("base.kind", self.kind, "'plain', 'momentum', 'nesterov', 'adam' or 'custom'")


def plain() -> Base:
    """Plain gradient step ``w - lr * g``."""
    return Base("plain")


def momentum(beta: float = 0.9, nesterov: bool = False) -> Base:
    """Heavy-ball (or Nesterov) momentum base: ``m = g + beta m``, ``w - lr * m``."""
    if not 0 <= beta < 1:
        raise ConfigError("beta", beta, "a number in [0, 1)")
    return Base("nesterov" if nesterov else "momentum", momentum=float(beta))


def adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Base:
    """Adam base (``optax.scale_by_adam``); the learning rate stays a sweepable hyperparameter."""
    for name, value in (("b1", b1), ("b2", b2)):
        if not 0 <= value < 1:
            raise ConfigError(name, value, "a number in [0, 1)")
    check_positive("eps", eps)
    return Base("adam", b1=float(b1), b2=float(b2), eps=float(eps))


def custom(transform: optax.GradientTransformation) -> Base:
    """Any optax transformation *without* the learning rate as the base step."""
    if not isinstance(transform, optax.GradientTransformation):
        raise ConfigError("base", transform, "an optax.GradientTransformation")
    return Base("custom", transform=transform)


def as_base(base) -> Base:
    if base is None:
        return plain()
    if isinstance(base, Base):
        return base
    if isinstance(base, str):
        if base == "plain":
            return plain()
        if base in ("momentum", "nesterov"):
            return momentum(nesterov=base == "nesterov")
        if base == "adam":
            return adam()
        raise ConfigError("base", base, "'plain', 'momentum', 'nesterov' or 'adam'")
    if isinstance(base, optax.GradientTransformation):
        return custom(base)
    raise ConfigError("base", base, "a Base, an optax.GradientTransformation or a name")


def base_init(base: Base, params):
    return base.make().init(params)


def base_step(base: Base, params, grads, base_state, lr):
    """Apply the base transformation to ``grads`` and descend: ``w - lr * update``."""
    updates, base_state = base.make().update(grads, base_state, params)
    params = jax.tree_util.tree_map(lambda w, u: w - jnp.asarray(lr, w.dtype) * u, params, updates)
    return params, base_state


def loss_and_gradient(loss_fn, params, batch):
    """``(loss, ∇loss)`` at ``params``: the one place every rule takes its gradients."""
    return jax.value_and_grad(loss_fn)(params, batch)


class StepRule:
    """A static update rule (frozen dataclass subclasses). Subclasses implement init and step."""

    name = "rule"
    grads_per_step = 1.0

    def init(self, params):
        return {"base": base_init(self.base, params), "count": jnp.zeros((), jnp.int32)}

    def step(self, params, state, loss_fn, batch, hparams, key):  # pragma: no cover - abstract
        raise NotImplementedError


@pytree_dataclass
class Optimizer:
    """A step rule together with its hyperparameters (pytree leaves) and batching policy.

    Attributes:
      rule: the static update rule (hashable, compares by value).
      hparams: dict name -> array; leaves, so grids vmap and new values never recompile.
      batch_size: examples per step drawn by the runner (None: full batch, or the problem's
        default for problems that draw fresh noise).
      replace: draw mini-batches with replacement (True) or by shuffled epochs (False).
    """

    rule: Any = static_field()
    hparams: dict = dataclasses.field(default_factory=dict)
    batch_size: int | None = static_field(default=None)
    replace: bool = static_field(default=False)

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def grads_per_step(self) -> float:
        return self.rule.grads_per_step

    def init(self, params):
        return self.rule.init(params)

    def step(self, params, state, loss_fn: Callable, batch, hparams, key):
        return self.rule.step(params, state, loss_fn, batch, hparams, key)

    def with_hparams(self, **values) -> "Optimizer":
        """A copy with some hyperparameter values replaced (validated like the constructor)."""
        for name, value in values.items():
            if name not in self.hparams:
                raise ConfigError("hparam", name, "one of " + ", ".join(sorted(self.hparams)))
            validate_hparam(name, value)
        merged = dict(self.hparams)
        merged.update({k: jnp.asarray(v, dtype=self.hparams[k].dtype) for k, v in values.items()})
        return dataclasses.replace(self, hparams=merged)


def validate_hparam(name: str, value) -> None:
    if name == "lr":
        check_positive(name, value)
    else:
        check_nonnegative(name, value)


def make_hparams(**values) -> dict:
    """Validated hyperparameters as float arrays (float64 when x64 is on)."""
    out = {}
    for name, value in values.items():
        validate_hparam(name, value)
        out[name] = jnp.asarray(value, dtype=jnp.result_type(float))
    return out
