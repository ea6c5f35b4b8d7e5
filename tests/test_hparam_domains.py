"""Hyperparameter domains are declared once per rule and checked by the constructor,
``with_hparams`` and ``st.sweep`` alike; rules are abstract or final."""
from __future__ import annotations

import dataclasses
import inspect

import jax
import numpy as np
import pytest

import sharp_theory as st
from sharp_theory.errors import ConfigError
from sharp_theory.optim.base import StepRule

PROBLEM = st.problems.op_toy(noise=0.5)


def _all_rules(cls=StepRule):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_rules(sub)


@pytest.mark.parametrize("optimizer, grid, words", [
    (st.optim.rst(0.1, 0.1), {"switch_prob": [1.5]}, "grid['switch_prob']=[1.5]: expected a probability in [0, 1]"),
    (st.optim.rwp(0.1, 0.01), {"mix": [3.0]}, "grid['mix']=[3.0]: expected a probability in [0, 1]"),
    (st.optim.sam(0.1, 0.1), {"lr": [0.1, 0.0]}, "expected a finite value > 0"),
    (st.optim.sam(0.1, 0.1), {"rho": [-0.1]}, "expected a finite value >= 0"),
    (st.optim.sam(0.1, 0.1), {"lr": ["0.1"]}, "grid['lr']=['0.1']: expected a non-empty 1-D sequence of numbers"),
    (st.optim.sam(0.1, 0.1), {"rho": [True]}, "of numbers"),
    (st.optim.lets(0.1, 0.1), {"beta": [np.nan]}, "grid['beta']"),
])
def test_a_bad_grid_value_is_one_config_error_before_any_work(optimizer, grid, words, monkeypatch):
    from sharp_theory.dynamics import sweeps as sweep_module

    def no_work(*args, **kwargs):  # pragma: no cover - reached only if validation is missing
        raise AssertionError("the sweep started before refusing the grid")

    monkeypatch.setattr(sweep_module, "_sweep_jit", no_work)
    with pytest.raises(ConfigError) as caught:
        st.sweep(PROBLEM, {"opt": optimizer}, steps=2, grid=grid)
    message = str(caught.value)
    assert "\n" not in message and words in message, message


@pytest.mark.parametrize("make, name, value", [
    (lambda v: st.optim.rst(0.1, 0.1, switch_prob=v), "switch_prob", 1.5),
    (lambda v: st.optim.rwp(0.1, 0.01, mix=v), "mix", 3.0),
    (lambda v: st.optim.sam(v, 0.1), "lr", "0.1"),
    (lambda v: st.optim.sam(0.1, v), "rho", None),
    (lambda v: st.optim.looksam(0.1, 0.1, alpha=v), "alpha", -1.0),
    (lambda v: st.optim.ae_sam(0.1, 0.1, threshold_scale=v), "threshold_scale", -0.5),
])
def test_constructor_and_with_hparams_refuse_what_the_domain_refuses(make, name, value):
    with pytest.raises(ConfigError, match=name):
        make(value)
    good = make(0.5)
    with pytest.raises(ConfigError, match=name):
        good.with_hparams(**{name: value})
    assert float(good.with_hparams(**{name: 0.25}).hparams[name]) == 0.25


def test_every_rule_declares_the_domain_of_every_hyperparameter_its_constructor_sets():
    model = None
    built = [st.optim.gd(0.1), st.optim.sgd(0.1), st.optim.sam(0.1, 0.1), st.optim.usam(0.1, 0.1),
             st.optim.nbar(0.1, 0.1), st.optim.obar(0.1, 0.1), st.optim.asam(0.1, 0.1),
             st.optim.looksam(0.1, 0.1), st.optim.ssam(0.1, 0.1), st.optim.lpf_sgd(0.1, 0.1),
             st.optim.rwp(0.1, 0.1), st.optim.swa(st.optim.sgd(0.1)), st.optim.wasam(0.1, 0.1),
             st.optim.rst(0.1, 0.1, switch_prob_end=0.9, horizon=10), st.optim.ae_sam(0.1, 0.1),
             st.optim.flat_lora(0.1, 0.1), st.optim.preconditioned_sam(0.1, 0.1),
             st.optim.functional_sam(0.1, 0.1, model=model), st.optim.lets(0.1, 0.1),
             st.optim.saf(0.1, 1.0, model=model), st.optim.gsam(0.1, 0.1),
             st.optim.friendly_sam(0.1, 0.1), st.optim.momentum_sam(0.1, 0.1), st.optim.s2_sam(0.1, 0.1),
             st.optim.sampa(0.1, 0.1), st.optim.lookahead_sam(0.1, 0.1), st.optim.cr_sam(0.1, 0.1),
             st.optim.r_sam(0.1, 0.1), st.optim.delta_sam(0.1, 0.1), st.optim.mup2_sam(0.1, 0.1),
             st.optim.frob_sam(0.1, 0.1), st.optim.det_sam(0.1, 0.1),
             st.optim.late_phase(st.optim.sam(0.1, 0.1), 10),
             st.optim.adversarial_training(0.1, 0.1)]
    assert {o.rule.__class__ for o in built} >= {r for r in _all_rules() if not inspect.isabstract(r)}
    for optimizer in built:
        declared = optimizer.rule.hparam_domains
        assert set(optimizer.hparams) <= set(declared), optimizer.name
        for name, value in optimizer.hparams.items():
            declared[name].check(name, value)  # the defaults lie in their own domains


def test_rules_are_abstract_or_final():
    concrete = [r for r in _all_rules() if not inspect.isabstract(r)]
    assert len(concrete) >= 15
    for rule in concrete:
        assert dataclasses.is_dataclass(rule) and rule.__dataclass_params__.frozen, rule
        assert not any(not inspect.isabstract(sub) for sub in rule.__subclasses__()), rule
    with pytest.raises(TypeError, match="abstract or final"):
        class Tweaked(st.optim.SharpnessAware):  # noqa: F841 - subclassing a final rule fails
            pass
    with pytest.raises(TypeError):
        StepRule()


def test_the_measured_cost_is_the_truth_no_static_count_remains():
    assert not hasattr(st.optim.sam(0.1, 0.1), "grads_per_step")
    traj = st.run(PROBLEM, st.optim.rst(0.1, 0.1, switch_prob=0.0), steps=5, key=jax.random.key(0))
    assert float(traj.grad_evals) == 5.0  # RST without SAM steps pays one gradient a step
