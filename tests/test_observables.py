"""Observables have one signature, ``fn(params, problem, state)``; a problem may declare its
outputs so that output-based rules (Functional-SAM, SAF) need no model of their own."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory.observables import RunState, of_params, of_params_and_problem

KEY = jax.random.key(0)
X = jnp.asarray(np.random.default_rng(0).normal(size=(6, 3)))
Y = jnp.asarray(np.random.default_rng(1).normal(size=6))


def radius(params, problem, state: RunState):
    return state.hparams["rho"]


def recorded_step(params, problem, state: RunState):
    return state.step.astype(jnp.float64)  # records read NaN after divergence: a float


def test_an_observable_reads_the_lanes_hyperparameters_and_the_step():
    problem = st.problems.op_toy(noise=0.5)
    result = st.sweep(problem, st.optim.sam(1e-2, 0.1), steps=6, seeds=2, stride=3,
                      grid={"rho": [0.1, 0.2, 0.4]}, observe={"rho": radius, "step": recorded_step})
    observed = result["sam"].observed
    np.testing.assert_array_equal(observed["rho"][:, 0, 0], [0.1, 0.2, 0.4])
    np.testing.assert_array_equal(observed["step"][0, 0], [0, 3, 6])


def test_a_function_of_fewer_arguments_is_adapted_explicitly_never_sniffed():
    problem = st.problems.op_toy()
    adapted = st.run(problem, st.optim.gd(1e-2), steps=2, key=KEY,
                     observe={"B": of_params(st.measure.balancedness),
                              "loss": of_params_and_problem(lambda p, prob: prob.evaluation_loss(p))})
    assert adapted.observed["B"].shape == (3,)
    with pytest.raises(st.ConfigError, match="of_params"):
        st.run(problem, st.optim.gd(1e-2), steps=2, key=KEY,
               observe={"B": st.measure.balancedness})


def _outputs(params, batch):
    return batch["x"] @ (params["u"] * params["v"])


def _loss_of_outputs(outputs, batch):
    return jnp.mean(jnp.square(outputs - batch["y"]))


def _loss(params, batch):
    return _loss_of_outputs(_outputs(params, batch), batch)


@dataclasses.dataclass(frozen=True)
class Model(st.optim.OutputModel):
    def outputs(self, params, batch):
        return _outputs(params, batch)

    def loss(self, outputs, batch):
        return _loss_of_outputs(outputs, batch)


def test_functional_sam_and_saf_take_the_output_split_from_the_problem():
    params0 = {"u": jnp.ones(3), "v": jnp.asarray([0.5, -1.0, 2.0])}
    declared = st.problems.from_loss(_loss, params0, {"x": X, "y": Y}, outputs=_outputs,
                                     loss_of_outputs=_loss_of_outputs)
    assert declared.has_outputs
    np.testing.assert_allclose(declared.loss_of_outputs(declared.outputs(params0, declared.examples),
                                                        declared.examples),
                               declared.loss(params0, declared.examples), rtol=1e-15)
    for make in (lambda model: st.optim.functional_sam(0.05, 0.1, model=model),
                 lambda model: st.optim.saf(0.05, 1.0, model=model)):
        from_problem = st.run(declared, make(None), steps=5, key=KEY)
        from_model = st.run(declared, make(Model()), steps=5, key=KEY)
        for a, b in zip(jax.tree_util.tree_leaves(from_problem.params),
                        jax.tree_util.tree_leaves(from_model.params)):
            np.testing.assert_array_equal(a, b)
    plain = st.problems.from_loss(_loss, params0, {"x": X, "y": Y})
    assert not plain.has_outputs
    with pytest.raises(st.ConfigError, match="outputs"):
        st.run(plain, st.optim.functional_sam(0.05, 0.1), steps=1, key=KEY)
    with pytest.raises(st.ConfigError, match="both or neither"):
        st.problems.from_loss(_loss, params0, {"x": X, "y": Y}, outputs=_outputs)


def test_the_phase_diagram_reads_the_radius_from_the_run_not_from_problem_constants():
    from sharp_theory.studies import phase_diagram

    problem = st.problems.conv_relu_signal_noise(8, 1.0, seed=0, n_train=4, n_test=20, n_filters=2)
    assert "ascent_radius" not in problem.constants
    at_zero = phase_diagram.ascent_point_noise_activation(
        problem.params0, problem, RunState({"rho": jnp.asarray(0.0)}, None, 0))
    plain = st.measure.aligned_noise_activation_fraction(problem.params0, problem)
    assert float(at_zero) == float(plain)
