"""The exercise checks students are graded by (st.labkit.check_number / check_expression /
check_function): a right answer passes, a wrong one fails in one sentence, and nothing the lab
failed to measure (a NaN target) is ever a pass."""
import math

import numpy as np
import pytest
import sympy

import sharp_theory as st
from sharp_theory.labkit import ExerciseFailed, check_expression, check_function, check_number


def test_check_number_passes_within_tolerance_and_fails_outside():
    check_number("radius", 0.151, 0.15, rtol=0.01)
    with pytest.raises(ExerciseFailed, match="radius = 0.2 is 33% away from the measured 0.15"):
        check_number("radius", 0.2, 0.15, rtol=0.01)
    with pytest.raises(ExerciseFailed, match="should be a number"):
        check_number("radius", "a lot", 0.15, rtol=0.01)
    with pytest.raises(ExerciseFailed, match="finite"):
        check_number("radius", math.inf, 0.15, rtol=0.01)


@pytest.mark.parametrize("target", [math.nan, math.inf, np.float64("nan")])
def test_a_target_the_run_did_not_measure_is_never_a_pass(target):
    with pytest.raises(ExerciseFailed, match="cannot be checked: the run measured"):
        check_number("radius", 0.15, target, rtol=0.01)


@pytest.mark.parametrize("rtol", [0.0, -0.1, math.nan, math.inf, "1%"])
def test_a_bad_tolerance_is_refused_by_name(rtol):
    with pytest.raises(st.ConfigError, match="rtol"):
        check_number("radius", 0.15, 0.15, rtol=rtol)


def test_check_expression_is_symbolic():
    eta, rho, lam = sympy.symbols("eta rho lam", positive=True)
    names = {"eta": eta, "rho": rho, "lam": lam}
    expected = eta * rho * lam / (2 - eta * lam)
    check_expression("formula", "rho*eta*lam/(2 - lam*eta)", expected, names)
    with pytest.raises(ExerciseFailed, match="not equal"):
        check_expression("formula", "eta*rho*lam/(1 - eta*lam)", expected, names)
    with pytest.raises(ExerciseFailed, match="uses x"):
        check_expression("formula", "x*eta", expected, names)


def test_check_function_fails_on_nan_and_on_a_wrong_value():
    reference = lambda x: 2.0 * x
    cases = [(np.arange(3.0),)]
    check_function("double", lambda x: x + x, reference, cases, atol=1e-12)
    with pytest.raises(ExerciseFailed, match="differs from the library"):
        check_function("double", lambda x: x * np.nan, reference, cases, atol=1e-12)
    with pytest.raises(ExerciseFailed, match="shape"):
        check_function("double", lambda x: x[:2], reference, cases, atol=1e-12)
