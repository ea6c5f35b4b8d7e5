"""The optimizer contract, the pluggable base step, and the one way to build an optimizer.

Every step rule has one signature::

    state = optimizer.init(params)
    params, state, info = optimizer.step(params, state, loss_fn, batch, hparams, key)

``hparams`` is a dict of arrays (lr, rho, alpha, ...). It is a pytree leaf of :class:`Optimizer`,
so ``jax.vmap`` sweeps a grid of values and changing a value never recompiles. The *rule* (which
update, which base, which norm) is static and compares by value.

A rule is *abstract or final* (Equinox's pattern): :class:`StepRule` declares what every rule
has (``base``, ``name``, ``hparam_domains``, ``init``, ``step``) and implements nothing a rule
overrides; every concrete rule is a frozen dataclass that nothing subclasses. Each rule declares
its hyperparameters' domains once (``hparam_domains``); :func:`make_optimizer` (every
constructor), :meth:`Optimizer.with_hparams` and ``st.sweep``'s grids all validate from it.
"""
from __future__ import annotations

import abc
import dataclasses
import inspect
import types
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from .._pytree import pytree_dataclass, static_field
from ..errors import (NONNEGATIVE, POSITIVE, ConfigError, Domain, check_int, check_nonnegative,
                      check_positive)
from ..tree import global_norm


@dataclasses.dataclass(frozen=True)
class Base:
    """The base update that turns a (possibly SAM-modified) gradient into a step direction.

    Build one with :func:`plain`, :func:`momentum`, :func:`adam`, :func:`adamw`, :func:`custom`
    or :func:`as_base`; every constructor's ``base=`` takes any of these.

    Attributes:
      kind: ``"plain"`` (identity, so the step is ``w - lr * g``), ``"momentum"`` (heavy ball,
        ``optax.trace``), ``"nesterov"``, ``"adam"`` (``optax.scale_by_adam``; with
        ``weight_decay > 0`` followed by ``optax.add_decayed_weights``: AdamW's decoupled decay,
        ``w - lr (adam(g) + λ w)``) or ``"custom"``.
      momentum: the momentum coefficient β in [0, 1) (kinds "momentum" and "nesterov").
      b1: Adam's first-moment decay in [0, 1).
      b2: Adam's second-moment decay in [0, 1).
      eps: Adam's denominator offset (> 0).
      weight_decay: AdamW's decoupled weight decay λ >= 0 (kind "adam"; 0 is plain Adam).
      transform: for kind "custom", a user-supplied ``optax.GradientTransformation`` that does
        not include the learning rate (None otherwise).
    """

    kind: str = "plain"
    momentum: float = 0.9
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    transform: Any = None  # optax.GradientTransformation for kind="custom"
    weight_decay: float = 0.0  # AdamW's decoupled decay λ (kind="adam" only)

    def __repr__(self) -> str:
        """Only the fields that apply to this kind."""
        if self.kind in ("momentum", "nesterov"):
            return f"Base(kind={self.kind!r}, momentum={self.momentum})"
        if self.kind == "adam":
            decay = f", weight_decay={self.weight_decay}" if self.weight_decay else ""
            return f"Base(kind='adam', b1={self.b1}, b2={self.b2}, eps={self.eps}{decay})"
        if self.kind == "custom":
            return f"Base(kind='custom', transform={type(self.transform).__name__})"
        return f"Base(kind={self.kind!r})"

    def make(self) -> optax.GradientTransformation:
        if self.kind == "plain":
            return optax.identity()
        if self.kind == "momentum":
            return optax.trace(decay=self.momentum, nesterov=False)
        if self.kind == "nesterov":
            return optax.trace(decay=self.momentum, nesterov=True)
        if self.kind == "adam":
            adam_transform = optax.scale_by_adam(b1=self.b1, b2=self.b2, eps=self.eps)
            if self.weight_decay > 0:
                return optax.chain(adam_transform, optax.add_decayed_weights(self.weight_decay))
            return adam_transform
        if self.kind == "custom":
            return self.transform
        raise ConfigError("base.kind", self.kind, "'plain', 'momentum', 'nesterov', 'adam' or 'custom'")


def plain() -> Base:
    """The plain base step ``w - lr * g``.

    Returns:
      A :class:`Base` of kind "plain".
    """
    return Base("plain")


def momentum(beta: float = 0.9, nesterov: bool = False) -> Base:
    """The heavy-ball (or Nesterov) momentum base: ``m = g + beta m``, ``w - lr * m``.

    Args:
      beta: the momentum coefficient, in [0, 1).
      nesterov: use Nesterov's look-ahead form (``optax.trace(nesterov=True)``).

    Returns:
      A :class:`Base` of kind "momentum" or "nesterov".

    Raises:
      ConfigError: ``beta`` outside [0, 1).
    """
    if not 0 <= beta < 1:
        raise ConfigError("beta", beta, "a number in [0, 1)")
    return Base("nesterov" if nesterov else "momentum", momentum=float(beta))


def adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Base:
    """The Adam base (``optax.scale_by_adam``); the learning rate stays a sweepable hyperparameter.

    Args:
      b1: first-moment decay, in [0, 1).
      b2: second-moment decay, in [0, 1).
      eps: denominator offset (> 0).

    Returns:
      A :class:`Base` of kind "adam".

    Raises:
      ConfigError: a decay outside [0, 1) or ``eps`` ≤ 0.

    References:
      Kingma & Ba 2015, Alg. 1.
    """
    for name, value in (("b1", b1), ("b2", b2)):
        if not 0 <= value < 1:
            raise ConfigError(name, value, "a number in [0, 1)")
    check_positive("eps", eps)
    return Base("adam", b1=float(b1), b2=float(b2), eps=float(eps))


def adamw(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4) -> Base:
    """AdamW base: Adam with decoupled weight decay, ``w - lr (adam(g) + weight_decay · w)``.

    Args:
      b1: Adam's first-moment decay in [0, 1).
      b2: Adam's second-moment decay in [0, 1).
      eps: Adam's denominator offset (> 0).
      weight_decay: λ >= 0 (0 gives :func:`adam` exactly).

    Returns:
      A :class:`Base` of kind "adam" (preconditioned SAM reads its second moments as from Adam).

    References: Loshchilov, Hutter. Decoupled weight decay regularization. ICLR 2019.
    """
    base = adam(b1, b2, eps)
    check_nonnegative("weight_decay", weight_decay)
    return dataclasses.replace(base, weight_decay=float(weight_decay))


def adam_moments(base: Base, base_state):
    """The ``optax.scale_by_adam`` state inside an Adam base's state (AdamW chains it first).

    Args:
      base: a :class:`Base` of kind "adam" (:func:`adam` or :func:`adamw`).
      base_state: that base's optimizer state.

    Returns:
      The ``ScaleByAdamState`` (fields ``mu``, ``nu``, ``count``).

    Raises:
      ConfigError: ``base`` is not an Adam base.
    """
    if base.kind != "adam":
        raise ConfigError("base", base.kind, "an Adam base")
    return base_state if hasattr(base_state, "nu") else base_state[0]


def custom(transform: optax.GradientTransformation) -> Base:
    """Any optax transformation *without* the learning rate as the base step.

    Args:
      transform: an ``optax.GradientTransformation`` (the runner multiplies its update by
        ``-lr``).

    Returns:
      A :class:`Base` of kind "custom".

    Raises:
      ConfigError: ``transform`` is not an optax transformation.
    """
    if not isinstance(transform, optax.GradientTransformation):
        raise ConfigError("base", transform, "an optax.GradientTransformation")
    check_no_learning_rate(transform)
    return Base("custom", transform=transform)


def check_no_learning_rate(transform: optax.GradientTransformation) -> None:
    """Refuse an optax transformation that already descends (``optax.adam(1e-2)``, ``optax.sgd``).

    The runner steps ``w - lr * update``: a transformation that already multiplies by
    ``-learning_rate`` would make every step climb. It is probed once on a known gradient: a
    learning-rate-free transformation's first update points along the gradient (positive inner
    product, as ``scale_by_adam``, ``trace``, ``identity``); one that includes ``-lr`` points
    against it.

    Args:
      transform: an ``optax.GradientTransformation``.

    Raises:
      ConfigError: the probe's update points against the gradient, in one line with the fix.
    """
    gradient = jnp.asarray([1.0, -2.0, 0.5, 3.0], dtype=jnp.float64)
    params = jnp.asarray([0.5, 0.25, -1.0, 2.0], dtype=jnp.float64)
    try:
        with jax.numpy_dtype_promotion("standard"):
            updates, _ = transform.update(gradient, transform.init(params), params)
        alignment = float(jnp.vdot(jnp.asarray(updates), gradient))
    except Exception:  # a transformation that needs other pytrees or arguments: not probed
        return
    if alignment < 0:
        raise ConfigError(
            "base", "an optax transformation whose update points against the gradient",
            "one without the learning rate (the optimizer's lr= scales it): "
            "optax.scale_by_adam() instead of optax.adam(lr), optax.trace(0.9) instead of "
            "optax.sgd(lr, momentum=0.9), or st.optim.adam()")


def as_base(base) -> Base:
    """The :class:`Base` meant by ``base``.

    Args:
      base: None or "plain", "momentum", "nesterov", "adam", a :class:`Base`, or an optax
        transformation (without the learning rate).

    Returns:
      A :class:`Base`.
    """
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
    """The base transformation's state for ``params`` (momentum buffers, Adam moments)."""
    return base.make().init(params)


def base_step(base: Base, params, grads, base_state, lr):
    """Apply the base transformation to ``grads`` and descend: ``w - lr * update``.

    Args:
      base: the :class:`Base`.
      params: the current parameter pytree.
      grads: the direction to feed the base (a pytree like ``params``; SAM passes the gradient
        at its ascent point).
      base_state: the base's state (from :func:`initial_state`, ``state["base"]``).
      lr: the learning rate (a scalar, cast to each leaf's dtype).

    Returns:
      ``(params, base_state)`` after the step.
    """
    # optax's own arithmetic (Adam's bias correction ``decay ** count``) mixes a float with an
    # int32 count; it is not ours to change, so it runs under JAX's standard promotion even when
    # a caller (the tests) asks for strict promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, base_state = base.make().update(grads, base_state, params)
    params = jax.tree_util.tree_map(lambda w, u: w - jnp.asarray(lr, w.dtype) * u, params, updates)
    return params, base_state


def loss_and_gradient(loss_fn, params, batch):
    """The loss and its gradient at ``params``: the one place every rule takes its gradients.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the parameter pytree.
      batch: the batch passed to ``loss_fn`` (any pytree, or None).

    Returns:
      ``(loss, grads)``: a scalar and a pytree like ``params``.
    """
    return jax.value_and_grad(loss_fn)(params, batch)


def gradient(loss_fn, params, batch):
    """The gradient ``∇loss_fn(params, batch)`` (the gradient of :func:`loss_and_gradient` alone).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the parameter pytree.
      batch: the batch passed to ``loss_fn``.

    Returns:
      A pytree like ``params``.
    """
    return loss_and_gradient(loss_fn, params, batch)[1]


def domains(**declared: Domain) -> Mapping[str, Domain]:
    """A rule's hyperparameter declaration: name -> :class:`sharp_theory.errors.Domain`.

    Args:
      **declared: one Domain per hyperparameter name (e.g. ``lr=POSITIVE, rho=NONNEGATIVE``).

    Returns:
      A read-only mapping (rules are hashable and compare by value; their declaration must not
      change).
    """
    return types.MappingProxyType(dict(declared))


def initial_state(base: Base, params) -> dict:
    """The state every rule starts from: the base's state and a step counter at 0.

    Args:
      base: the rule's :class:`Base`.
      params: the initial parameter pytree.

    Returns:
      ``{"base": base state, "count": int32 zero}``; rules add their own entries.
    """
    return {"base": base_init(base, params), "count": jnp.zeros((), jnp.int32)}


def step_info(loss, grads, grad_evals, hvp_evals=0.0, **extra) -> dict:
    """The ``info`` a step reports.

    Args:
      loss: the loss at the current iterate.
      grads: the plain gradient there (its norm is reported).
      grad_evals: gradient evaluations this step, in full-batch passes (the measured cost;
        ``traj.grad_evals`` adds them up).
      hvp_evals: Hessian-vector products this step.
      **extra: anything else the rule reports (its radius, whether it took a SAM step, ...).

    Returns:
      dict with ``loss``, ``grad_norm``, ``grad_evals``, ``hvp_evals`` and ``extra``.
    """
    dtype = jnp.result_type(float)
    info = {"loss": loss, "grad_norm": global_norm(grads),
            "grad_evals": jnp.asarray(grad_evals, dtype), "hvp_evals": jnp.asarray(hvp_evals, dtype)}
    info.update(extra)
    return info


def descend(rule: "StepRule", params, state, direction, hparams, **extra_state):
    """Take the base step along ``direction``, advance the step counter and store ``extra_state``.

    Args:
      rule: the :class:`StepRule` whose ``base`` steps.
      params: the current parameter pytree.
      state: the rule's state (with ``"base"`` and ``"count"``).
      direction: the update direction fed to the base (a pytree like ``params``).
      hparams: the hyperparameters (``hparams["lr"]`` is used).
      **extra_state: entries to store in the new state (a rule's own buffers).

    Returns:
      ``(params, state)`` after the step.
    """
    params, base_state = base_step(rule.base, params, direction, state["base"], hparams["lr"])
    new_state = dict(state)
    new_state.update(base=base_state, count=state["count"] + 1, **extra_state)
    return params, new_state


class StepRule(abc.ABC):
    """An update rule: abstract here, final in every subclass (Equinox's abstract-or-final).

    Every concrete rule is a frozen dataclass (static, hashable, compares by value) that
    nothing subclasses, and provides:

    - ``base``: a :class:`Base` field (the base step the rule descends with);
    - ``name``: its short name in results (a class attribute or a property);
    - ``hparam_domains``: name -> :class:`sharp_theory.errors.Domain` of every hyperparameter
      it reads from ``hparams`` (built with :func:`domains`);
    - ``init(params) -> state`` and
      ``step(params, state, loss_fn, batch, hparams, key) -> (params, state, info)``, where
      ``info`` holds ``loss``, ``grad_norm`` and the measured ``grad_evals``/``hvp_evals``
      (:func:`step_info`).
    """

    base: Base

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for parent in cls.__mro__[1:]:
            if parent is not StepRule and issubclass(parent, StepRule) and not inspect.isabstract(parent):
                raise TypeError(f"{cls.__name__} subclasses the concrete rule {parent.__name__}: "
                                "rules are abstract or final (wrap or copy it instead)")

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The rule's short name in results."""

    @property
    @abc.abstractmethod
    def hparam_domains(self) -> Mapping[str, Domain]:
        """Name -> Domain of each hyperparameter the rule reads."""

    @abc.abstractmethod
    def init(self, params):
        """The optimizer state for ``params``."""

    @abc.abstractmethod
    def step(self, params, state, loss_fn, batch, hparams, key):
        """One step: ``(params, state, info)``."""


def check_hparam(rule: StepRule, name: str, value, parameter: str | None = None):
    """Validate ``value`` for hyperparameter ``name`` of ``rule`` from its declared domain.

    Args:
      rule: the step rule.
      name: the hyperparameter.
      value: a number or an array of numbers (a grid).
      parameter: the name to print (default ``name``).

    Returns:
      ``value`` as a float numpy array.

    Raises:
      ConfigError: an undeclared name, a non-numeric value, or one outside the domain.
    """
    declared = rule.hparam_domains
    if name not in declared:
        raise ConfigError("hparam", name, f"a hyperparameter of {rule.name}: "
                          + ", ".join(sorted(declared)))
    return declared[name].check(name if parameter is None else parameter, value)


@pytree_dataclass
class Optimizer:
    """A step rule together with its hyperparameters (pytree leaves) and batching policy.

    Build one with :func:`make_optimizer` (which validates); the constructors in
    ``st.optim`` all do.

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

    def init(self, params):
        return self.rule.init(params)

    def step(self, params, state, loss_fn: Callable, batch, hparams, key):
        return self.rule.step(params, state, loss_fn, batch, hparams, key)

    def with_hparams(self, **values) -> "Optimizer":
        """A copy with some hyperparameter values replaced (validated like the constructor)."""
        for name, value in values.items():
            if name not in self.hparams:
                raise ConfigError("hparam", name, "one of " + ", ".join(sorted(self.hparams)))
            check_hparam(self.rule, name, value)
        merged = dict(self.hparams)
        merged.update({k: jnp.asarray(v, dtype=self.hparams[k].dtype) for k, v in values.items()})
        return dataclasses.replace(self, hparams=merged)


def make_optimizer(rule: StepRule, hparams: Mapping[str, Any], *, batch_size=None,
                   replace=False) -> Optimizer:
    """The one way a constructor builds its :class:`Optimizer`.

    Args:
      rule: the step rule (a final :class:`StepRule`).
      hparams: name -> value of each hyperparameter, validated against
        ``rule.hparam_domains`` and stored as float arrays (float64 when x64 is on).
      batch_size: examples per step (None or an integer >= 1).
      replace: draw mini-batches with replacement (a bool).

    Returns:
      The validated Optimizer.

    Raises:
      ConfigError: a value outside its domain, an undeclared name, or bad batching.

    Examples:
      >>> import sharp_theory as st
      >>> rule = st.optim.SharpnessAware(normalize=False)  # USAM's rule
      >>> opt = st.optim.make_optimizer(rule, {"lr": 0.1, "rho": 0.05})
      >>> opt.name, sorted(opt.hparams), str(opt.hparams["lr"].dtype)
      ('usam', ['lr', 'rho'], 'float64')
      >>> st.optim.make_optimizer(rule, {"lr": -0.1, "rho": 0.05})
      Traceback (most recent call last):
      ...
      sharp_theory.errors.ConfigError: invalid lr=-0.1: expected a finite value > 0
    """
    if not isinstance(rule, StepRule):
        raise ConfigError("rule", type(rule).__name__, "a sharp_theory StepRule")
    values = {}
    for name, value in hparams.items():
        check_hparam(rule, name, value)
        values[name] = jnp.asarray(value, dtype=jnp.result_type(float))
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    if not isinstance(replace, bool):
        raise ConfigError("replace", replace, "True or False")
    return Optimizer(rule, values, batch_size, replace)


LR_AND_RADIUS = domains(lr=POSITIVE, rho=NONNEGATIVE)
"""The domains of the usual SAM pair: step size > 0, radius >= 0."""
