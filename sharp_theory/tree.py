"""Small pytree helpers shared by optimizers, measures and the runner."""
from __future__ import annotations

import jax
import jax.numpy as jnp


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
