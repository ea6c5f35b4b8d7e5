"""Hypothesis strategies that draw problem instances inside a theorem's regime.

Every strategy draws a small *spec* (dimensions from a short tuple, seeds, scales) and builds an
:class:`Instance` from it: the :class:`~sharp_theory.problems.Problem` together with the facts a
bound needs (λ_max, the minimizer, B_0, the ground truth ...). The spec is all a counterexample
needs to be replayed: :func:`build_instance` rebuilds the identical instance from it, bit for bit.

Dimensions come from small sets so that compiled programs are reused across draws (JAX compiles
once per shape), and hypothesis shrinks towards the first entry of each set: the smallest
dimension the strategy allows.

Example::

    from sharp_theory.testing import instances
    @st.testing.claim(quad=instances.quadratics(dims=(1, 2, 3), eigenvalues=(0.5, 2.0)), ...)
    def my_bound(quad, ...):
        quad.problem, quad.facts["lambda_max"], quad.facts["minimizer"]

References:
  Li, Zhang, He. Implicit regularization of sharpness-aware minimization for scale-invariant
    problems (NeurIPS 2024, arXiv 2410.14802): f(xᵀy), f(xyᵀ) and B = ½(‖x‖² − ‖y‖²).
  Andriushchenko & Flammarion. Towards understanding sharpness-aware minimization (ICML 2022):
    diagonal linear networks on sparse regression.
  Ding, Drusvyatskiy, Fazel, Harchaoui. Flat minima generalize for low-rank matrix recovery
    (arXiv 2203.03756): matrix sensing.
  Chen et al. Why does sharpness-aware minimization generalize better than SGD? (NeurIPS 2023):
    two-layer convolutional ReLU networks.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as hs

from .. import problems as _problems
from ..errors import ConfigError, check_int

FLOAT = np.float64


@dataclasses.dataclass(frozen=True, eq=False)
class Instance:
    """A drawn problem instance and the facts a bound needs.

    Attributes:
      family: the builder's name (a key of :data:`BUILDERS`).
      spec: plain values (ints, floats, tuples) that rebuild the instance with
        :func:`build_instance`; this is what a counterexample's JSON and replay command carry.
      problem: the :class:`~sharp_theory.problems.Problem`.
      facts: dict of closed-form quantities (arrays or floats) of this instance.
    """

    family: str
    spec: dict
    problem: Any
    facts: dict

    def __repr__(self) -> str:
        inside = ", ".join(f"{k}={v!r}" for k, v in self.spec.items())
        return f"{self.family}({inside})"


def _tuple_of_floats(values) -> tuple:
    return tuple(float(v) for v in values)


# --- quadratics ---------------------------------------------------------------------------------

def quadratic_objective(params, batch, constants):
    """The objective ``½ xᵀ H x`` of every quadratic instance (module level, so they all share one
    compiled program).

    Args:
      params: the vector x, shape (d,).
      batch: unused (the quadratics have no data).
      constants: ``{"hessian": H}``, H of shape (d, d).

    Returns:
      A scalar array.
    """
    return 0.5 * params @ constants["hessian"] @ params


def build_quadratic(*, eigenvalues, rotation_seed: int, start_seed: int, start_scale: float = 1.0,
                    start_along: int | None = None) -> Instance:
    """``½ xᵀ H x`` with ``H = Q diag(eigenvalues) Qᵀ`` (Q a random rotation from ``rotation_seed``).

    Args:
      eigenvalues: the spectrum (any signs: a negative entry makes 0 a saddle).
      rotation_seed: integer seed of the rotation Q.
      start_seed: integer seed of the start direction.
      start_scale: ‖x_0‖ (> 0).
      start_along: None for a random unit direction; else the start has a component
        ``start_scale`` along eigenvector ``start_along`` plus a random part of norm
        ``start_scale / 2`` (used for "started near a saddle" statements).

    Returns:
      An Instance with facts ``eigenvalues`` (as given), ``eigenvectors`` (columns of Q),
      ``hessian``, ``lambda_max``, ``lambda_min``, ``minimizer`` (the stationary point 0).
    """
    eigenvalues = np.asarray(eigenvalues, dtype=FLOAT)
    dim = eigenvalues.size
    rotation, _ = np.linalg.qr(np.random.default_rng(rotation_seed).standard_normal((dim, dim)))
    hessian = rotation @ np.diag(eigenvalues) @ rotation.T
    hessian = 0.5 * (hessian + hessian.T)
    direction = np.random.default_rng(start_seed).standard_normal(dim)
    direction /= max(np.linalg.norm(direction), np.finfo(FLOAT).tiny)
    if start_along is None:
        start = start_scale * direction
    else:
        start = start_scale * (rotation[:, start_along] + 0.5 * direction)
    problem = _problems.Problem(objective=quadratic_objective, params0=jnp.asarray(start),
                                constants={"hessian": jnp.asarray(hessian)}, name="quadratic")
    facts = {"eigenvalues": eigenvalues, "eigenvectors": rotation, "hessian": hessian,
             "lambda_max": float(eigenvalues.max()), "lambda_min": float(eigenvalues.min()),
             "minimizer": np.zeros(dim)}
    spec = {"eigenvalues": _tuple_of_floats(eigenvalues), "rotation_seed": int(rotation_seed),
            "start_seed": int(start_seed), "start_scale": float(start_scale),
            "start_along": start_along}
    return Instance("quadratic", spec, problem, facts)


def _check_range(name, bounds, positive=True):
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigError(name, bounds, "a pair (low, high) of numbers") from None
    if not (np.isfinite(low) and np.isfinite(high) and low <= high and (low > 0 or not positive)):
        raise ConfigError(name, bounds, "finite (low, high) with " +
                          ("0 < low <= high" if positive else "low <= high"))
    return low, high


def _check_dims(name, dims, minimum=1):
    if isinstance(dims, int):
        dims = (dims,)
    dims = tuple(dims)
    if not dims:
        raise ConfigError(name, dims, f"a non-empty tuple of integers >= {minimum}")
    for value in dims:
        check_int(name, value, minimum=minimum, maximum=64)
    return dims


def quadratics(dims=(1, 2, 3, 4), eigenvalues=(0.1, 10.0), *, saddle_curvature=None,
               start_scale=(1e-3, 1.0)) -> hs.SearchStrategy:
    """Quadratics ``½ xᵀHx`` with a spectrum in a given range, optionally with one saddle direction.

    Args:
      dims: the dimensions to draw from (small set; shrinks towards the first).
      eigenvalues: (low, high), 0 < low <= high: the positive eigenvalues.
      saddle_curvature: None for a minimum at 0; else (low, high): one eigenvalue is −μ with μ in
        that range (0 is then a strict saddle, needs dim >= 2) and the start lies near 0 along
        its eigenvector (eigenvector index 0).
      start_scale: (low, high) range of ‖x_0‖.

    Returns:
      A strategy of :class:`Instance` (family "quadratic").
    """
    dims = _check_dims("dims", dims, minimum=2 if saddle_curvature is not None else 1)
    low, high = _check_range("eigenvalues", eigenvalues)
    scale_low, scale_high = _check_range("start_scale", start_scale)
    seeds = hs.integers(0, 2**16 - 1)

    @hs.composite
    def draw(data):
        dim = data(hs.sampled_from(dims))
        positive = data(hs.lists(hs.floats(low, high), min_size=dim, max_size=dim))
        along = None
        if saddle_curvature is not None:
            mu_low, mu_high = _check_range("saddle_curvature", saddle_curvature)
            positive[0] = -data(hs.floats(mu_low, mu_high))
            along = 0
        return build_quadratic(eigenvalues=tuple(positive), rotation_seed=data(seeds),
                               start_seed=data(seeds),
                               start_scale=data(hs.floats(scale_low, scale_high)),
                               start_along=along)

    return draw()


# --- f(xᵀy) and f(xyᵀ) --------------------------------------------------------------------------

def build_scalar_product(*, dim: int, target: float, seed: int, scale: float) -> Instance:
    """``f(xᵀy) = (xᵀy − target)²`` (the OP toy of Li et al. without noise) from a random init.

    Args:
      dim: the length of x and y (≥ 1).
      target: the target t of xᵀy.
      seed: integer seed of the initial factors.
      scale: the standard deviation of the initial entries (> 0).

    Returns:
      An Instance (family "scalar_product") with facts ``target``, ``product`` (x_0ᵀy_0),
      ``f_prime`` (f'(x_0ᵀy_0)), ``f_second`` (2), ``B0`` (½(‖x_0‖² − ‖y_0‖²)).

    References:
      Li, Zhang, He 2024, Sec. 2 and App. A.4.
    """
    rng = np.random.default_rng(seed)
    x0, y0 = scale * rng.standard_normal(dim), scale * rng.standard_normal(dim)
    problem = _problems.op_toy(noise=0.0, target=target, x0=x0, y0=y0)
    product = float(x0 @ y0)
    facts = {"target": float(target), "product": product, "f_prime": 2.0 * (product - target),
             "f_second": 2.0, "B0": 0.5 * float(x0 @ x0 - y0 @ y0)}
    return Instance("scalar_product", {"dim": int(dim), "target": float(target), "seed": int(seed),
                                       "scale": float(scale)}, problem, facts)


def scalar_products(dims=(1, 2, 3, 4), *, target=(-1.0, 1.0), scale=(0.1, 2.0)):
    """Instances of ``f(xᵀy) = (xᵀy − t)²`` with a random target t and random initial factors.

    Args:
      dims: lengths of x and y to draw from (a small set; shrinks towards the first).
      target: (low, high) of the target t.
      scale: (low, high), 0 < low, of the standard deviation of the initial entries.

    Returns:
      A hypothesis strategy of :class:`Instance` (family "scalar_product").

    Raises:
      ConfigError: empty or out-of-range dims (1 to 64), or a malformed range.
    """
    dims = _check_dims("dims", dims)
    t_low, t_high = _check_range("target", target, positive=False)
    s_low, s_high = _check_range("scale", scale)
    return hs.builds(lambda dim, t, seed, s: build_scalar_product(dim=dim, target=t, seed=seed, scale=s),
                     hs.sampled_from(dims), hs.floats(t_low, t_high), hs.integers(0, 2**16 - 1),
                     hs.floats(s_low, s_high))


def build_outer_product(*, rows: int, cols: int, seed: int, scale: float) -> Instance:
    """``f(xyᵀ) = ‖xyᵀ − A‖²_F`` (the NOP toy of Li et al. without noise), random A and init.

    Args:
      rows: the length d1 of x (≥ 1).
      cols: the length d2 of y (≥ 1).
      seed: integer seed of A and of the initial factors.
      scale: the standard deviation of the initial entries (> 0).

    Returns:
      An Instance (family "outer_product") with facts ``target`` (A, standard normal entries)
      and ``B0``.

    References:
      Li, Zhang, He 2024, Sec. 2 and App. A.4.
    """
    rng = np.random.default_rng(seed)
    target = rng.standard_normal((rows, cols))
    x0, y0 = scale * rng.standard_normal(rows), scale * rng.standard_normal(cols)
    problem = _problems.nop_toy(noise=0.0, target=target, noise_scales=np.ones(rows), x0=x0, y0=y0)
    facts = {"target": target, "B0": 0.5 * float(x0 @ x0 - y0 @ y0)}
    return Instance("outer_product", {"rows": int(rows), "cols": int(cols), "seed": int(seed),
                                      "scale": float(scale)}, problem, facts)


def outer_products(rows=(1, 2, 3), cols=(1, 2, 3), *, scale=(0.1, 2.0)):
    """Instances of ``f(xyᵀ) = ‖xyᵀ − A‖²_F`` with a random target A and random initial factors.

    Args:
      rows: lengths of x to draw from (a small set).
      cols: lengths of y to draw from (a small set).
      scale: (low, high), 0 < low, of the standard deviation of the initial entries.

    Returns:
      A hypothesis strategy of :class:`Instance` (family "outer_product").

    Raises:
      ConfigError: empty or out-of-range dims (1 to 64), or a malformed range.
    """
    rows, cols = _check_dims("rows", rows), _check_dims("cols", cols)
    s_low, s_high = _check_range("scale", scale)
    return hs.builds(lambda r, c, seed, s: build_outer_product(rows=r, cols=c, seed=seed, scale=s),
                     hs.sampled_from(rows), hs.sampled_from(cols), hs.integers(0, 2**16 - 1),
                     hs.floats(s_low, s_high))


# --- diagonal linear networks ------------------------------------------------------------------

def build_diagonal_net(*, n: int, d: int, k: int, seed: int, param_seed: int,
                       scale: float) -> Instance:
    """A diagonal linear network β = u⊙v on sparse regression from random factors (u, v).

    Args:
      n: the number of training examples (≥ 1).
      d: the number of features (≥ 1).
      k: the sparsity of the target (1 ≤ k ≤ d).
      seed: integer seed of the data (:func:`sharp_theory.problems.diagonal_linear`'s recipe).
      param_seed: integer seed of the initial factors.
      scale: the standard deviation of the initial entries of u and v (> 0).

    Returns:
      An Instance (family "diagonal_net") with facts ``X``, ``y``, ``theta_star`` and
      ``c0`` = u_0² − v_0².

    References:
      Andriushchenko & Flammarion 2022, Sec. 4.
    """
    problem = _problems.diagonal_linear(n=n, n_test=4, d=d, k=k, seed=seed)
    rng = np.random.default_rng(param_seed)
    u0, v0 = scale * rng.standard_normal(d), scale * rng.standard_normal(d)
    problem = dataclasses.replace(problem, params0={"u": jnp.asarray(u0), "v": jnp.asarray(v0)})
    facts = {"X": np.asarray(problem.examples["x"]), "y": np.asarray(problem.examples["y"]),
             "theta_star": np.asarray(problem.constants["theta_star"]), "c0": u0**2 - v0**2}
    return Instance("diagonal_net", {"n": int(n), "d": int(d), "k": int(k), "seed": int(seed),
                                     "param_seed": int(param_seed), "scale": float(scale)},
                    problem, facts)


def diagonal_nets(n=(4, 6, 8), d=(4, 6, 8), k=(1, 2), *, scale=(0.1, 2.0)):
    """Diagonal-net regression instances (n, d, k from small sets; k ≤ d is enforced).

    Args:
      n: numbers of examples to draw from.
      d: numbers of features to draw from.
      k: sparsities to draw from (clipped to d).
      scale: (low, high), 0 < low, of the standard deviation of the initial factors.

    Returns:
      A hypothesis strategy of :class:`Instance` (family "diagonal_net").

    Raises:
      ConfigError: empty or out-of-range dims (1 to 64), or a malformed range.
    """
    n, d, k = _check_dims("n", n), _check_dims("d", d), _check_dims("k", k)
    s_low, s_high = _check_range("scale", scale)
    seeds = hs.integers(0, 2**16 - 1)
    return hs.builds(lambda n_, d_, k_, seed, pseed, s: build_diagonal_net(
        n=n_, d=d_, k=min(k_, d_), seed=seed, param_seed=pseed, scale=s),
        hs.sampled_from(n), hs.sampled_from(d), hs.sampled_from(k), seeds, seeds,
        hs.floats(s_low, s_high))


# --- matrix sensing -----------------------------------------------------------------------------

def build_matrix_sensing(*, d1: int, d2: int, r: int, m: int | None, operator: str,
                         seed: int) -> Instance:
    """Matrix sensing with a random rank-r, unit-Frobenius ground truth M.

    Args:
      d1: rows of M (≥ 1).
      d2: columns of M (≥ 1).
      r: the rank of M (1 ≤ r ≤ min(d1, d2)).
      m: the number of measurements (None: the library's default).
      operator: "identity", "gaussian", "bilinear" or "completion"
        (see :func:`sharp_theory.problems.matrix_sensing`).
      seed: integer seed of the instance.

    Returns:
      An Instance (family "matrix_sensing") with facts ``ground_truth`` M, ``nuclear_norm``
      ‖M‖_*, ``D1_squared``, ``D2_squared``.

    References:
      Ding, Drusvyatskiy, Fazel, Harchaoui 2022, Sec. 2.
    """
    problem = _problems.matrix_sensing(d1, d2, rank=r, operator=operator, measurements=m, seed=seed)
    truth = np.asarray(problem.constants["ground_truth"])
    facts = {"ground_truth": truth, "nuclear_norm": float(np.linalg.norm(truth, "nuc")),
             "D1_squared": np.asarray(problem.constants["D1_squared"]),
             "D2_squared": np.asarray(problem.constants["D2_squared"])}
    return Instance("matrix_sensing", {"d1": int(d1), "d2": int(d2), "r": int(r), "m": m,
                                       "operator": operator, "seed": int(seed)}, problem, facts)


def matrix_sensings(d1=(2, 3), d2=(2, 3), r=(1, 2), *, operator="identity", m=None):
    """Matrix-sensing instances (d1, d2, r from small sets, r ≤ min(d1, d2) enforced).

    Args:
      d1: row counts to draw from.
      d2: column counts to draw from.
      r: ranks to draw from (clipped to min(d1, d2)).
      operator: the sensing operator of every instance (see :func:`build_matrix_sensing`).
      m: a tuple of measurement counts to draw from, or None for the library's default
        (ignored for "identity").

    Returns:
      A hypothesis strategy of :class:`Instance` (family "matrix_sensing").

    Raises:
      ConfigError: empty or out-of-range dims (1 to 64).
    """
    d1, d2, r = _check_dims("d1", d1), _check_dims("d2", d2), _check_dims("r", r)
    counts = hs.just(None) if m is None else hs.sampled_from(_check_dims("m", m))
    return hs.builds(lambda a, b, rank, count, seed: build_matrix_sensing(
        d1=a, d2=b, r=min(rank, a, b), m=None if operator == "identity" else count,
        operator=operator, seed=seed),
        hs.sampled_from(d1), hs.sampled_from(d2), hs.sampled_from(r), counts,
        hs.integers(0, 2**16 - 1))


# --- conv ReLU ----------------------------------------------------------------------------------

def build_conv_relu(*, dim: int, signal_strength: float, seed: int) -> Instance:
    """A small two-layer conv-ReLU signal/noise instance (n = 4 train, 8 test, P = 2, m = 2).

    Args:
      dim: the patch dimension d (≥ 2).
      signal_strength: ‖μ‖ (> 0).
      seed: integer seed of the data and the initialization.

    Returns:
      An Instance (family "conv_relu") with facts ``dim`` and ``signal_strength``.

    References:
      Chen, Zhang, Kou, Chen, Hsieh, Gu 2023 (the data model).
    """
    problem = _problems.conv_relu_signal_noise(dim=dim, signal_strength=signal_strength, n_train=4,
                                               n_test=8, n_filters=2, seed=seed)
    return Instance("conv_relu", {"dim": int(dim), "signal_strength": float(signal_strength),
                                  "seed": int(seed)}, problem,
                    {"dim": int(dim), "signal_strength": float(signal_strength)})


def conv_relus(dims=(8, 16), signal_strength=(0.5, 5.0)):
    """Small conv-ReLU instances (Chen et al. 2023's data model, tiny sizes).

    Args:
      dims: patch dimensions to draw from (each ≥ 2).
      signal_strength: (low, high), 0 < low, of ‖μ‖.

    Returns:
      A hypothesis strategy of :class:`Instance` (family "conv_relu").

    Raises:
      ConfigError: empty or out-of-range dims, or a malformed range.
    """
    dims = _check_dims("dims", dims, minimum=2)
    low, high = _check_range("signal_strength", signal_strength)
    return hs.builds(lambda dim, s, seed: build_conv_relu(dim=dim, signal_strength=s, seed=seed),
                     hs.sampled_from(dims), hs.floats(low, high), hs.integers(0, 2**16 - 1))


BUILDERS: dict[str, Callable[..., Instance]] = {
    "quadratic": build_quadratic, "scalar_product": build_scalar_product,
    "outer_product": build_outer_product, "diagonal_net": build_diagonal_net,
    "matrix_sensing": build_matrix_sensing, "conv_relu": build_conv_relu,
}
"""Instance family name -> builder (the ``build_*`` function that rebuilds an instance from its
spec; used by :func:`build_instance` and by replayed counterexamples).
"""


def build_instance(family: str, spec: dict) -> Instance:
    """Rebuild an instance from its family and spec (the inverse of ``Instance.spec``).

    Args:
      family: a key of :data:`BUILDERS` (e.g. ``"quadratic"``).
      spec: the builder's keyword arguments (lists are turned back into tuples).

    Returns:
      The :class:`Instance`, identical bit for bit to the one the spec was taken from.

    Raises:
      ConfigError: unknown family or a spec the builder rejects.
    """
    if family not in BUILDERS:
        raise ConfigError("instance family", family, "one of " + ", ".join(sorted(BUILDERS)))
    spec = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()}
    try:
        return BUILDERS[family](**spec)
    except TypeError as error:
        raise ConfigError(f"{family} spec", spec, f"the builder's arguments ({error})") from None


__all__ = ["Instance", "BUILDERS", "build_instance", "build_quadratic", "build_scalar_product",
           "build_outer_product", "build_diagonal_net", "build_matrix_sensing", "build_conv_relu",
           "quadratics", "scalar_products", "outer_products", "diagonal_nets", "matrix_sensings",
           "conv_relus", "quadratic_objective"]
