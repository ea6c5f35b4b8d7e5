"""Small pytree helpers shared by problems, optimizers, measures and the runner.

The lowest layer of the package (with :mod:`sharp_theory.errors`): it imports nothing else from
sharp_theory, so every other layer may use it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .errors import ConfigError


def tree_add(a, b):
    return jax.tree_util.tree_map(lambda x, y: x + y, a, b)


def tree_scale(tree, factor):
    return jax.tree_util.tree_map(lambda x: factor * x, tree)


def tree_squared_norm(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


def global_norm(tree):
    """Euclidean norm of all leaves together (0 for a zero tree; never NaN)."""
    return jnp.sqrt(tree_squared_norm(tree))


def safe_normalize(tree, norm=None):
    """``tree / ‖tree‖`` with ``0 / 0 := 0``.

    Zero gradients are common at balanced or zero initializations; dividing by the norm clipped at
    the smallest positive normal number keeps them zero instead of producing NaN.
    """
    if norm is None:
        norm = global_norm(tree)
    leaves = jax.tree_util.tree_leaves(tree)
    tiny = jnp.finfo(leaves[0].dtype).tiny if leaves else 1e-300
    return jax.tree_util.tree_map(lambda x: x / jnp.maximum(norm, tiny).astype(x.dtype), tree)


def all_finite(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def tree_where(condition, on_true, on_false):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def leading_size(batch):
    """Number of examples in a batch pytree (size of the shared leading axis)."""
    leaves = jax.tree_util.tree_leaves(batch)
    if not leaves:
        return None
    return leaves[0].shape[0]


def split_into_chunks(batch, m: int):
    """Reshape every leaf's leading axis n into ``(n // m, m)`` (m-sharpness groups).

    Args:
      batch: a pytree of arrays sharing a leading example axis of size n.
      m: the chunk size; n must be a multiple of m.

    Returns:
      The batch with leaves of shape ``(n // m, m, ...)``.

    Raises:
      ConfigError: the batch has no example axis, or m does not divide n.
    """
    n = leading_size(batch)
    if n is None:
        raise ConfigError("m", m, "m-sharpness needs a batch of examples; this problem has none")
    if n % m:
        raise ConfigError("m", m, f"a divisor of the batch size {n}")
    return jax.tree_util.tree_map(lambda x: x.reshape((n // m, m) + x.shape[1:]), batch)


def factor_pairs(params):
    """The list of ``{"x", "y"}`` factor pairs in ``params``.

    Args:
      params: a dict with keys ``"x"`` and ``"y"`` (one pair) or a non-empty list/tuple of such
        dicts (one pair per layer).

    Returns:
      A list of the pair dicts.

    Raises:
      ConfigError: ``params`` holds no factor pairs.
    """
    if isinstance(params, dict) and "x" in params and "y" in params:
        return [params]
    if isinstance(params, (list, tuple)) and params and all(
            isinstance(p, dict) and "x" in p and "y" in p for p in params):
        return list(params)
    raise ConfigError("params", type(params).__name__,
                      "a dict with keys 'x' and 'y', or a list of such dicts (one per layer)")


def rebuild_factor_pairs(params, pairs):
    """The inverse of :func:`factor_pairs`: ``pairs`` in the container type of ``params``.

    Args:
      params: the original parameters (a pair dict, or a list/tuple of them).
      pairs: a list of new pair dicts, one per pair of ``params``.

    Returns:
      ``pairs[0]`` for a single pair, else ``type(params)(pairs)``.
    """
    return pairs[0] if isinstance(params, dict) else type(params)(pairs)
