"""A compiled computation that stops making progress ends with an error, not a wait forever.

JAX dispatches a compiled call and returns at once; the caller then waits for the result. If the
computation deadlocks (XLA's CPU threads all waiting on each other, a callback that never
returns) that wait never ends, at 0% CPU. :func:`wait_for` waits the same way but watches the
process's CPU time: a CPU computation in progress uses it, a stuck one does not. When the
process has used less than 1% of one core for ``SHARP_THEORY_STALL_S`` seconds (default 300;
0 turns the watchdog off) while the result is not ready, it raises
:class:`~sharp_theory.errors.StallError` naming the call and what to try.

Only on the CPU backend: an accelerator computes while the host waits idle.
"""
from __future__ import annotations

import time

import jax

from ..errors import StallError
from ..jax_setup import STALL_VARIABLE, stall_seconds

IDLE_FRACTION = 0.01
"""CPU time per second of waiting below which the process counts as making no progress."""

POLL_SECONDS = 0.5
"""The longest pause between two looks at the result (the first looks are sooner)."""


def wait_for(tree, what: str):
    """``jax.block_until_ready(tree)``, ended by :class:`StallError` if nothing progresses.

    Args:
      tree: a pytree holding the (possibly not yet computed) results of a compiled call.
      what: the call, for the message (``"st.sweep"``).

    Returns:
      ``tree``, every array computed.

    Raises:
      StallError: on the CPU backend, the process used less than :data:`IDLE_FRACTION` of a
        core for the stall limit (``SHARP_THEORY_STALL_S``) while the result was not ready.
    """
    limit = stall_seconds()
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(tree) if isinstance(leaf, jax.Array)]
    if limit is None or not leaves or jax.default_backend() != "cpu":
        return jax.block_until_ready(tree)
    pause = 0.005
    last_look, last_cpu = time.monotonic(), time.process_time()
    last_progress = last_look
    while not all(leaf.is_ready() for leaf in leaves):
        time.sleep(pause)
        pause = min(2 * pause, POLL_SECONDS)
        now, cpu = time.monotonic(), time.process_time()
        if cpu - last_cpu > IDLE_FRACTION * (now - last_look):
            last_progress = now
        last_look, last_cpu = now, cpu
        if now - last_progress >= limit:
            raise StallError(
                f"{what} made no progress for {now - last_progress:.0f} s (the process used no "
                f"CPU time while waiting for its compiled computation): it is stuck, not slow. "
                f"Restart the Python process (the stuck computation keeps its threads); "
                f"shard=False or SHARP_THEORY_CPU_DEVICES=1 runs a sweep on one device, and "
                f"{STALL_VARIABLE}=seconds waits longer (0: never stop)")
    return tree
