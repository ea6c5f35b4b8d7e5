"""The benchmarks' hand-written baselines compute what the library computes (a benchmark that
times a different algorithm would report a meaningless ratio)."""
import jax
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory.problems.diagonal import diagonal_linear


@pytest.mark.parametrize("kind", ["gd", "n-sam", "1-sam"])
def test_diagonal_net_loops_match_the_library(kind, load_benchmark):
    bench = load_benchmark("bench_diagonal_nets")
    problem = diagonal_linear(12, 10, 15, 3, 2, init_scale=0.3)
    X, y = np.asarray(problem.examples["x"]), np.asarray(problem.examples["y"])
    u0, v0 = np.asarray(problem.params0["u"]), np.asarray(problem.params0["v"])
    lr, rho, steps = 0.3, 0.2, 25
    optimizer = {"gd": st.optim.gd(lr), "n-sam": st.optim.usam(lr, rho),
                 "1-sam": st.optim.usam(lr, rho, m=1)}[kind]
    library = st.run(problem, optimizer, steps=steps, key=jax.random.key(0))
    for loop in (bench.authors_style, bench.vectorized):
        u, v = loop(kind, X, y, lr, u0.copy(), v0.copy(), steps, rho)
        np.testing.assert_allclose(u, np.asarray(library.params["u"]), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(v, np.asarray(library.params["v"]), rtol=1e-12, atol=1e-14)
