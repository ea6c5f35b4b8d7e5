"""Input validation that fails early with a message naming parameter, value and valid range."""
from __future__ import annotations

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
