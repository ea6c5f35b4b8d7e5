"""``sharp-theory run diagonal-net --data FILE.npz ...``: one run of a diagonal linear network on
your own regression data (keys X, y, X_test, y_test), printing the final iterate's numbers.

Example::

    sharp-theory run diagonal-net --data data.npz --optimizer usam --m 1 --lr 0.5 --rho 0.3 \\
        --steps 10000 --x64 --json

References: Andriushchenko & Flammarion, ICML 2022, Sec. 4 (model and update rules).
"""
from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from pathlib import Path

import numpy as np

NAME = "diagonal-net"
HELP = "a diagonal linear network (beta = u*v or u*u - v*v) on your regression data"
OPTIMIZERS = ("gd", "sgd", "sam", "usam")


def add_arguments(parser) -> None:
    parser.add_argument("--data", type=Path, required=True,
                        help="an .npz file with arrays X (n x d), y (n), X_test (m x d), y_test (m)")
    parser.add_argument("--parametrization", default="uv", choices=("uv", "uu-vv"),
                        help="beta = u*v (init u = a, v = 0) or beta = u*u - v*v (init u = v = a)")
    parser.add_argument("--init-scale", type=float, default=0.1, help="initialization scale a > 0")
    parser.add_argument("--optimizer", default="gd", choices=OPTIMIZERS,
                        help="gd, sgd (one example per step, with replacement, unless "
                             "--batch-size), sam (normalized "
                             "ascent rho*g/|g|) or usam (unnormalized ascent rho*g)")
    parser.add_argument("--m", type=int, default=None,
                        help="SAM chunk size: 1 = per-example ascent (1-SAM); 0 or omitted = the "
                             "whole batch (n-SAM); must divide n")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sgd only: examples per step, drawn with replacement (default 1)")
    parser.add_argument("--lr", type=float, default=0.1, help="step size > 0")
    parser.add_argument("--rho", type=float, default=None,
                        help="SAM radius >= 0 (sam/usam only; default 0.1). Our 1-SAM rho is twice "
                             "the rho of the authors' code")
    parser.add_argument("--steps", type=int, default=10_000, help="number of steps >= 1")
    parser.add_argument("--seed", type=int, default=0, help="seed of the run (SGD's draws)")
    parser.add_argument("--x64", action="store_true", help="compute in float64 (default float32)")
    parser.add_argument("--json", action="store_true",
                        help="print {train_loss, test_loss, l1_norm, effective_init_mean, status} "
                             "of the final (last finite) iterate as one JSON line; non-finite "
                             "numbers print as null")


def load_data(path: Path) -> dict:
    """The four arrays of an .npz file, validated (ConfigError names the problem)."""
    from ..errors import ConfigError
    from ..problems.diagonal import check_regression_data

    if not path.is_file():
        raise ConfigError("--data", str(path), "an existing .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError("--data", str(path), f"a readable .npz file ({error})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ConfigError("--data", str(path), "an .npz file with arrays X, y, X_test, y_test "
                          "(this is a single .npy array; save all four with numpy.savez)")
    try:
        with loaded as archive:
            arrays = {key: archive[key] for key in ("X", "y", "X_test", "y_test")
                      if key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError("--data", str(path), f"a readable .npz file ({error})") from None
    missing = [key for key in ("X", "y", "X_test", "y_test") if key not in arrays]
    if missing:
        raise ConfigError("--data", f"{path} lacks {', '.join(missing)}",
                          "an .npz file with keys X, y, X_test, y_test")
    return check_regression_data(**arrays)


def check_fits_float32(path: Path, data: dict) -> None:
    """Refuse data whose initial loss or gradient would overflow float32 (the run would report
    "diverged at step 0" for what is a units problem, not a dynamics one)."""
    from ..errors import ConfigError

    largest = float(np.finfo(np.float32).max)
    X, y = data["X"].astype(np.float64), data["y"].astype(np.float64)
    # At the initialization beta is small, so loss ~ mean(y^2)/2 and gradient ~ X^T y / n.
    initial_loss = float(np.mean(y ** 2) / 2)
    initial_gradient = float(np.max(np.abs(X.T @ y)) / len(y))
    worst = max(float(np.max(np.abs(X))), float(np.max(np.abs(y))), initial_loss, initial_gradient)
    if not worst < largest:
        raise ConfigError("--data", str(path), f"data whose loss and gradient fit in float32 (their "
                          f"largest entry is about {worst:.3g} > {largest:.3g}): rescale X and y, "
                          f"or pass --x64")


def validate(args, n_examples: int | None = None) -> None:
    """Check every flag before any work (ConfigError -> one-line error, exit code 2)."""
    from ..errors import ConfigError, check_int, check_nonnegative, check_positive

    check_positive("--init-scale", args.init_scale)
    check_positive("--lr", args.lr)
    check_int("--steps", args.steps, minimum=1)
    from ..dynamics.trajectory import check_step_memory
    check_step_memory(args.steps, args.steps, lanes=1, parameter="--steps")  # stride = steps
    check_int("--seed", args.seed, minimum=0)
    sam_family = args.optimizer in ("sam", "usam")
    if args.batch_size is not None:
        if args.optimizer != "sgd":
            raise ConfigError("--batch-size", args.batch_size, f"no --batch-size for --optimizer "
                              f"{args.optimizer} (only sgd draws mini-batches)")
        check_int("--batch-size", args.batch_size, minimum=1)
    if args.rho is not None:
        if not sam_family:
            raise ConfigError("--rho", args.rho, f"no --rho for --optimizer {args.optimizer} "
                              "(only sam and usam have an ascent radius)")
        check_nonnegative("--rho", args.rho)
    if args.m is not None:
        check_int("--m", args.m, minimum=0)
        if args.m > 0 and not sam_family:
            raise ConfigError("--m", args.m, f"0 or no --m for --optimizer {args.optimizer} (only "
                              "sam and usam split the batch)")
        if n_examples is not None and args.m > 0 and n_examples % args.m:
            raise ConfigError("--m", args.m, f"0 or a divisor of the number of examples n = {n_examples}")


def build_optimizer(args):
    from .. import optim

    rho = 0.1 if args.rho is None else args.rho
    m = None if not args.m else args.m
    if args.optimizer == "gd":
        return optim.gd(args.lr)
    if args.optimizer == "sgd":
        return optim.sgd(args.lr, batch_size=args.batch_size or 1, replace=True)
    if args.optimizer == "sam":
        return optim.sam(args.lr, rho, m=m)
    return optim.usam(args.lr, rho, m=m)


def main(args) -> int:
    validate(args)
    data = load_data(args.data)
    validate(args, n_examples=data["X"].shape[0])

    import jax

    from ..dynamics import run
    from ..problems.diagonal import (OBSERVABLES, diagonal_linear, effective_init, l1_norm,
                                     test_set_loss, train_loss)

    dtype = np.float64 if args.x64 else np.float32
    if not args.x64:
        check_fits_float32(args.data, data)
    problem = diagonal_linear(**data, parametrization=args.parametrization,
                              init_scale=args.init_scale, dtype=dtype)
    optimizer = build_optimizer(args)
    if not args.x64:
        # Hyperparameters are float64 arrays; in a float32 run they would promote the parameters.
        optimizer = dataclasses.replace(
            optimizer, hparams={k: v.astype(np.float32) for k, v in optimizer.hparams.items()})
    trajectory = run(problem, optimizer, steps=args.steps, key=jax.random.key(args.seed),
                     observe=OBSERVABLES, stride=args.steps)
    summary = {"train_loss": float(trajectory.final("train_loss")),
               "test_loss": float(trajectory.final("test_loss")),
               "l1_norm": float(trajectory.final("l1_norm")),
               "effective_init_mean": float(np.mean(trajectory.final("c"))),
               "status": trajectory.status}
    if trajectory.diverged:
        # The observables read NaN after divergence; report the last finite iterate instead.
        params = trajectory.params
        summary.update(train_loss=float(train_loss(params, problem)),
                       test_loss=float(test_set_loss(params, problem)),
                       l1_norm=float(l1_norm(params, problem)),
                       effective_init_mean=float(np.mean(effective_init(params, problem))))
    if args.json:
        print(json.dumps({k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                          for k, v in summary.items()}))
    else:
        label = optimizer.name + ("" if args.optimizer in ("gd", "sgd") else
                                  f" rho={0.1 if args.rho is None else args.rho:g}")
        print(f"diagonal-net [{args.parametrization}, a={args.init_scale:g}] {label} lr={args.lr:g} "
              f"steps={args.steps}: train {summary['train_loss']:.6g}, test {summary['test_loss']:.6g}, "
              f"|beta|_1 {summary['l1_norm']:.6g}, mean c {summary['effective_init_mean']:.6g} "
              f"({summary['status']})")
    return 0
