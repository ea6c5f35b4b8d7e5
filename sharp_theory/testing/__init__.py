"""Property-based tests of claimed bounds: write a bound as a function returning its slack,
and let the fuzzer find, shrink and replay counterexamples.

    import sharp_theory as st
    from hypothesis import assume, strategies as hs

    @st.testing.claim(lam=hs.floats(0.1, 10.0), lr=hs.floats(1e-3, 1.0), rho=hs.floats(0.0, 0.5))
    def test_sam_stays_near_minimum(lam, lr, rho):
        \"\"\"Full-batch SAM on f(x) = lam*x^2/2 ends within 1e-6 of 0 when lr*lam < 2.\"\"\"
        assume(lr * lam < 2)
        ...
        return slack          # >= 0 holds, < 0 violated; NaN is an error, never "holds"

Run it with ``sharp-theory fuzz FILE::NAME`` (verdict, shrunk counterexample, slack, seed,
replay command; exit 0 holds / 1 falsified / 2 bad input), or as an ordinary pytest test.
``st.testing.instances`` draws problem instances inside a theorem's regime;
``sharp-theory fuzz --registered`` fuzzes our own theory (:mod:`.registered`).

Depends on hypothesis (imported when ``st.testing`` is first used).
"""
import importlib

# Imported on first use, so that `sharp-theory --help` does not pay for hypothesis.
_EXPORTS = {"claim": "decorator", "Claim": "decorator", "ClaimError": "decorator",
            "values_to_json": "decorator", "values_from_json": "decorator",
            "fuzz": "runner", "FuzzResult": "runner", "replay": "runner",
            "refine_to_boundary": "runner",
            "load_file": "files", "registered_claims": "files", "save_counterexample": "files"}
_MODULES = ("instances", "registered", "known_false", "decorator", "runner", "files", "command")

__all__ = ["instances", *_EXPORTS]


def __getattr__(name):
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(__all__) | set(_EXPORTS) | set(_MODULES))
