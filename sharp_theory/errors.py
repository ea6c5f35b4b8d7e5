"""Input validation that fails early with a message naming parameter, value and valid range."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


class ConfigError(ValueError):
    """A user-supplied value is outside its valid range.

    The message always names the parameter, the offending value and what would be valid, so the
    CLI can print it as one line and exit with code 2 before any work starts.
    """

    def __init__(self, parameter: str, value: Any, valid: str):
        self.parameter = parameter
        self.value = value
        self.valid = valid
        super().__init__(f"invalid {parameter}={_show(value)}: expected {valid}")


class StallError(RuntimeError):
    """A compiled computation stopped making progress (no CPU time used for the stall limit).

    Raised instead of waiting forever; the computation's threads stay stuck, so the process
    should be restarted before more work. The command line prints it as one line (exit code 5).
    """


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.size > 6:
        return f"array(shape={value.shape})"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_float_array(parameter: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(parameter, value, "a real number") from None
    if not np.all(np.isfinite(array)):
        raise ConfigError(parameter, value, "finite values")
    return array


def check_positive(parameter: str, value: Any) -> Any:
    """Require every entry of ``value`` to be finite and > 0."""
    array = _as_float_array(parameter, value)
    if not np.all(array > 0):
        raise ConfigError(parameter, value, "a finite value > 0")
    return value


def check_nonnegative(parameter: str, value: Any) -> Any:
    """Require every entry of ``value`` to be finite and >= 0."""
    array = _as_float_array(parameter, value)
    if not np.all(array >= 0):
        raise ConfigError(parameter, value, "a finite value >= 0")
    return value


def check_int(parameter: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """Require an integer in [minimum, maximum]."""
    valid = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(parameter, value, valid)
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(parameter, value, valid)
    return int(value)


def check_choice(parameter: str, value: Any, choices) -> Any:
    """Require ``value`` to be one of ``choices``."""
    if value not in choices:
        raise ConfigError(parameter, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_p_norm(parameter: str, value: Any) -> float:
    """Require a p-norm exponent in (1, inf]."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ConfigError(parameter, value, "a number in (1, inf]") from None
    if not (p > 1 or p == math.inf):
        raise ConfigError(parameter, value, "a number in (1, inf]")
    return p


@dataclasses.dataclass(frozen=True)
class Domain:
    """The valid values of one numeric hyperparameter, declared once and checked everywhere.

    A step rule declares a Domain per hyperparameter (``lr``: :data:`POSITIVE`, ``rho``:
    :data:`NONNEGATIVE`, ``switch_prob``: :data:`PROBABILITY`, ...); the constructor,
    ``Optimizer.with_hparams`` and ``st.sweep``'s grid all check values with :meth:`check`.

    Attributes:
      low: the lower bound (``-inf`` for none).
      high: the upper bound (``inf`` for none).
      low_open: whether ``low`` itself is excluded.
      high_open: whether ``high`` itself is excluded.
      integer: whether values must be whole numbers.
      description: the valid range in words, as error messages print it.
    """

    low: float
    high: float
    low_open: bool
    high_open: bool
    integer: bool
    description: str

    def contains(self, array: np.ndarray) -> bool:
        """Whether every entry of a finite float array lies in the domain."""
        above = array > self.low if self.low_open else array >= self.low
        below = array < self.high if self.high_open else array <= self.high
        whole = np.all(np.round(array) == array) if self.integer else True
        return bool(np.all(above) and np.all(below) and whole)

    def check(self, parameter: str, value: Any) -> np.ndarray:
        """Refuse ``value`` unless it is numeric (not a string or a bool), finite, and inside.

        Args:
          parameter: the name printed in the error (``"lr"``, ``"grid['rho']"``, ...).
          value: a number or an array of numbers.

        Returns:
          ``value`` as a float numpy array.

        Raises:
          ConfigError: one line naming the parameter, the value and :attr:`description`.
        """
        array = np.asarray(value) if not isinstance(value, (str, bytes)) else None
        if array is None or array.dtype.kind not in "iuf":
            raise ConfigError(parameter, value, f"{self.description} (a number, not "
                              f"{type(value).__name__})")
        array = array.astype(float)
        if not (np.all(np.isfinite(array)) and self.contains(array)):
            raise ConfigError(parameter, value, self.description)
        return array


POSITIVE = Domain(0.0, math.inf, True, True, False, "a finite value > 0")
NONNEGATIVE = Domain(0.0, math.inf, False, True, False, "a finite value >= 0")
PROBABILITY = Domain(0.0, 1.0, False, False, False, "a probability in [0, 1]")
DECAY = Domain(0.0, 1.0, False, True, False, "a number in [0, 1)")
POSITIVE_INTEGER = Domain(1.0, math.inf, False, True, True, "an integer >= 1")
REAL = Domain(-math.inf, math.inf, True, True, False, "a finite real number")
