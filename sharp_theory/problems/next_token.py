"""A next-token model with an exact softmax cross-entropy: where SAM can lower sharpness spuriously.

A vocabulary of V tokens. Contexts (the previous token ``a``) follow a Zipf law with exponent s,
``π_a ∝ (a + 1)^(−s)`` (s = 0: uniform); the next token follows a bigram table ``P(b | a)``, each
row a seeded Dirichlet draw around a Zipf law of the same exponent over a per-row random order of
the vocabulary. The population joint is ``J[a, b] = π_a P(b | a)``; the training set is
``n_train`` pairs drawn from J, kept as their empirical joint ``E = counts / n_train``. Both
losses are exact sums over the V x V table, never estimates:

    train loss  L(w)  = −Σ_ab E[a, b] log softmax(F_a(w))[b]
    test loss   L*(w) = −Σ_ab J[a, b] log softmax(F_a(w))[b]   (population cross-entropy)

The network maps a context token to V logits through an embedding, one hidden layer and a
read-out: ``F_a = tanh(e_a W_h + b_h) W_o + b_o`` (``W_o = Eᵀ`` with tied embeddings), so the
network's own Hessian ∇²F is not zero and the loss Hessian has both a Gauss-Newton part (the
logit path) and a functional part (see :mod:`sharp_theory.measure.logit_path`).

The data is one constant, ``tables`` of shape (2, V, V): ``tables[0] = E`` (training),
``tables[1] = J`` (population). A sweep can put several of them on a grid axis (one per Zipf
exponent, :func:`bigram_tables`), so s is a swept value and no Python loop runs over it.

References:
  Singh, Mobahi, Agarwala, Dauphin. Avoiding spurious sharpness minimization broadens
  applicability of SAM. arXiv 2502.02407 (2025): the logit-path / functional-path split of
  SAM's update for models trained with a softmax cross-entropy.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check_choice, check_int, check_nonnegative, check_positive
from .base import Problem

ACTIVATIONS = ("tanh",)


def zipf_weights(vocab_size: int, exponent: float) -> np.ndarray:
    """``p_k ∝ (k + 1)^(−exponent)``, k = 0..V−1, normalized (exponent 0: uniform)."""
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    weights = ranks ** (-float(exponent))
    return weights / weights.sum()


def bigram_tables(vocab_size: int, zipf_exponent: float, *, n_train: int, concentration: float = 1.0,
                  seed: int = 0) -> np.ndarray:
    """The training and population joints of the bigram recipe, stacked: shape (2, V, V).

    Args:
      vocab_size: V >= 2.
      zipf_exponent: s >= 0 of the context law and of each row's Dirichlet base measure.
      n_train: training pairs drawn from the joint (>= 1).
      concentration: c > 0; row a of P is ``Dirichlet(c · V · q_a)`` where ``q_a`` is the Zipf
        law over a random permutation of the tokens (small c: peaked rows, large c: rows near
        ``q_a``).
      seed: the data seed (the same seed gives the same tables).

    Returns:
      float64 array ``[E, J]``: E = counts / n_train of a multinomial draw from J, and J.
    """
    vocab_size = check_int("vocab_size", vocab_size, minimum=2, maximum=4096)
    check_nonnegative("zipf_exponent", zipf_exponent)
    n_train = check_int("n_train", n_train, minimum=1)
    check_positive("concentration", concentration)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    base = zipf_weights(vocab_size, zipf_exponent)
    context = base  # π: context token a has Zipf rank a
    rows = np.empty((vocab_size, vocab_size))
    for a in range(vocab_size):
        order = rng.permutation(vocab_size)
        alpha = concentration * vocab_size * base[order]
        # Gamma draws of tiny shape underflow to 0; a floor keeps every row a distribution.
        draw = rng.gamma(alpha) + 1e-300
        rows[a] = draw / draw.sum()
    joint = context[:, None] * rows
    joint = joint / joint.sum()
    counts = rng.multinomial(n_train, joint.reshape(-1)).reshape(vocab_size, vocab_size)
    return np.stack([counts / n_train, joint])


def logits(params, constants=None):
    """The network's logits for every context token: array (V, V), row a = F_a.

    ``F_a = tanh(e_a W_h + b_h) W_o + b_o``, with ``W_o = Eᵀ`` when the parameters have no
    ``readout`` (tied embeddings).
    """
    hidden = jnp.tanh(params["embedding"] @ params["hidden"] + params["hidden_bias"][None, :])
    readout = params["readout"] if "readout" in params else params["embedding"].T
    return hidden @ readout + params["readout_bias"][None, :]


def cross_entropy_of_logits(outputs, joint):
    """``−Σ_ab joint[a, b] log softmax(outputs_a)[b]`` (a weighted mean cross-entropy)."""
    return -jnp.sum(joint * jax.nn.log_softmax(outputs, axis=-1))


def _outputs(params, batch, constants):
    return logits(params, constants)


def _loss_of_outputs(outputs, batch, constants):
    return cross_entropy_of_logits(outputs, constants["tables"][0])


def _objective(params, batch, constants):
    return _loss_of_outputs(logits(params, constants), batch, constants)


def _population(params, constants):
    return cross_entropy_of_logits(logits(params, constants), constants["tables"][1])


def population_cross_entropy(params, problem) -> jnp.ndarray:
    """Test cross-entropy (exact, against the population joint) of ``params`` on ``problem``."""
    return _population(params, problem.constants)


def bayes_cross_entropy(problem) -> jnp.ndarray:
    """The smallest possible test cross-entropy: the conditional entropy H(next | context)."""
    joint = problem.constants["tables"][1]
    rows = joint / jnp.maximum(joint.sum(axis=1, keepdims=True), 1e-300)
    return -jnp.sum(joint * jnp.log(jnp.maximum(rows, 1e-300)))


def context_weights(problem) -> jnp.ndarray:
    """π: the population probability of each context token (shape (V,))."""
    return problem.constants["tables"][1].sum(axis=1)


@dataclasses.dataclass(frozen=True)
class _Initializer:
    """Gaussian initialization with fan-in scaling (hashable, so compiled sweeps are reused)."""

    vocab_size: int
    embedding_dim: int
    hidden_dim: int
    tied: bool
    init_scale: float

    def __call__(self, key, constants=None):
        vocab_size, embedding_dim, hidden_dim = self.vocab_size, self.embedding_dim, self.hidden_dim
        tied, scale = self.tied, self.init_scale
        dtype = jnp.result_type(float)
        k_embed, k_hidden, k_out = jax.random.split(key, 3)
        params = {
            "embedding": jax.random.normal(k_embed, (vocab_size, embedding_dim), dtype),
            "hidden": jax.random.normal(k_hidden, (embedding_dim, hidden_dim), dtype)
            / np.sqrt(embedding_dim),
            "hidden_bias": jnp.zeros((hidden_dim,), dtype),
            "readout_bias": jnp.zeros((vocab_size,), dtype),
        }
        if tied:
            params["embedding"] = params["embedding"] * scale
        else:
            params["readout"] = scale * jax.random.normal(k_out, (hidden_dim, vocab_size), dtype) \
                / np.sqrt(hidden_dim)
        return params


def softmax_bigram(vocab_size: int = 16, *, zipf_exponent: float = 1.0, embedding_dim: int = 8,
                   hidden_dim: int = 16, n_train: int | None = None, concentration: float = 1.0,
                   tied: bool = False, activation: str = "tanh", init_scale: float = 1.0,
                   seed: int = 0) -> Problem:
    """A two-layer next-token model with an exact cross-entropy on a Zipf bigram distribution.

    Args:
      vocab_size: V (2..4096); the parameter count is ``V d + d h + h + h V + V`` (untied).
      zipf_exponent: s >= 0 of the context law and the rows' base measure (0: uniform).
      embedding_dim: d >= 1.
      hidden_dim: h >= 1 (must equal d with ``tied=True``).
      n_train: training pairs (default ``4 V``: a few per context, so the training joint
        differs from the population one and there is a generalization gap).
      concentration: the Dirichlet concentration c > 0 of the rows (see :func:`bigram_tables`).
      tied: read out with the transposed embedding (no separate ``readout`` matrix).
      activation: the hidden nonlinearity (only "tanh": smooth, so ∇²F exists everywhere).
      init_scale: scale of the read-out initialization (> 0; small values start near uniform
        predictions).
      seed: seed of the data and of ``params0``.

    Returns:
      A :class:`Problem` with full-batch training loss (``batch`` is None), the exact population
      cross-entropy as ``evaluation_loss``, a random ``initializer``, and the output split
      (``outputs``: the (V, V) logits, ``loss_of_outputs``: the training cross-entropy of
      logits) that Functional-SAM and :mod:`sharp_theory.measure.logit_path` use.
    """
    vocab_size = check_int("vocab_size", vocab_size, minimum=2, maximum=4096)
    embedding_dim = check_int("embedding_dim", embedding_dim, minimum=1)
    hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
    check_choice("activation", activation, ACTIVATIONS)
    check_positive("init_scale", init_scale)
    if not isinstance(tied, bool):
        raise ConfigError("tied", tied, "True or False")
    if tied and hidden_dim != embedding_dim:
        raise ConfigError("hidden_dim", hidden_dim, f"equal to embedding_dim ({embedding_dim}) "
                          "with tied=True")
    n_train = 4 * vocab_size if n_train is None else n_train
    tables = bigram_tables(vocab_size, zipf_exponent, n_train=n_train,
                           concentration=concentration, seed=seed)
    initializer = _Initializer(vocab_size, embedding_dim, hidden_dim, tied, float(init_scale))
    params0 = initializer(jax.random.key(seed))
    return Problem(objective=_objective, params0=params0,
                   constants={"tables": jnp.asarray(tables)}, examples=None,
                   population=_population, initializer=initializer,
                   name=f"softmax_bigram(V={vocab_size})", outputs_fn=_outputs,
                   loss_of_outputs_fn=_loss_of_outputs)


__all__ = ["softmax_bigram", "bigram_tables", "zipf_weights", "logits", "cross_entropy_of_logits",
           "population_cross_entropy", "bayes_cross_entropy", "context_weights"]
