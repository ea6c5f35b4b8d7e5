"""Flow predictions (``st.flow``) checked against full-batch runs in the "flows" lab.

SAM's slow flow along a valley of minimizers: Wen, Ma, Li (ICLR 2023) give the drift in the
limit η, ρ → 0; the finite-ηλ rate ``2ηρ²/(2 − ηλ)²`` is derived in papers/flows.md. Both are
judged on f(xᵀy) = (xᵀy − ½)², whose balancedness B the drift moves and gradient flow conserves.
"""
from __future__ import annotations

from .base import Claim, Threshold, Verdict, finite, finite_max, finite_min, judge, register

LAB = "flows"
REGIME = ("op_toy f(xᵀy) = (xᵀy − ½)², x0 = (0.2, −0.1, 0.3), y0 = −3x0, full batch; ηλ ∈ "
          "{0.2, 0.4, 0.8, 1.2, 1.6} at the balanced point (λ = 2; {0.2, 0.8, 1.6} in --quick), "
          "ρ set so that the corrected drift rate is 0.005/step, 3 000 steps; the rate of "
          "−d log|B|/dt fitted where 1e-8 < |B| < 1e-3")

RATE_TOLERANCE = 0.05  # predicted / measured drift rate within 5%
ERROR_RATIO = 0.2  # a flow's weight-space error ≤ 0.2 × gradient flow's on the same run
ERROR_GROWTH = 2.0  # the error in the last tenth ≤ 2 × the error in the second tenth
LIMIT_CONSISTENCY = 1.0  # the limit's relative rate error ≤ 1 · ηλ (→ 0 as η → 0)


def _rate_numbers(rows, key: str, name: str) -> dict:
    return {"eta_lambda": [row["eta_lambda"] for row in rows],
            "ratios": [finite(row[f"{key}_ratio"], f"{name} ratio") for row in rows],
            "run_rates": [row["run_rate"] for row in rows],
            "flow_rates": [row[f"{key}_rate"] for row in rows],
            "statuses": [row["status"] for row in rows]}


def _check_corrected_rate(measured, *, quick) -> Verdict:
    numbers = _rate_numbers(measured["drift"], "slow_corrected", "finite-ηλ flow")
    worst = finite_max([abs(ratio - 1) for ratio in numbers["ratios"]], "relative error")
    return judge(Threshold("max over ηλ of |finite-ηλ flow rate / run rate − 1|", worst, "<=",
                           RATE_TOLERANCE), numbers,
                 "the finite-ηλ drift rate of B within 5% of the SAM runs' at every ηλ")


def _check_limit_rate(measured, *, quick) -> Verdict:
    rows = measured["drift"]
    numbers = _rate_numbers(rows, "slow", "η, ρ → 0 limit")
    largest = max(range(len(rows)), key=lambda index: rows[index]["eta_lambda"])
    error = abs(numbers["ratios"][largest] - 1)
    return judge(Threshold("|limit flow rate / run rate − 1| at the largest ηλ (1.6)", error, "<=",
                           RATE_TOLERANCE), numbers,
                 "the η, ρ → 0 drift rate of B within 5% of the SAM run's at ηλ = 1.6; the "
                 "ratios at every ηλ are reported")


def _check_limit_consistency(measured, *, quick) -> Verdict:
    numbers = _rate_numbers(measured["drift"], "slow", "η, ρ → 0 limit")
    scaled = finite_max([abs(ratio - 1) / eta_lambda for ratio, eta_lambda
                         in zip(numbers["ratios"], numbers["eta_lambda"])], "error / ηλ")
    numbers["relative_error_over_eta_lambda"] = scaled
    return judge(Threshold("max over ηλ of |limit rate / run rate − 1| / ηλ", scaled, "<=",
                           LIMIT_CONSISTENCY), numbers,
                 "the limit's relative error in the drift rate is at most ηλ at every ηλ (it "
                 "vanishes as η → 0; the 2-cycle average predicts 1 − (2 − ηλ)²/4 ≤ ηλ)")


def _check_weight_error(measured, *, quick) -> Verdict:
    trajectory = measured["trajectory"]
    ratio = finite(trajectory["error_ratio_corrected"], "error ratio")
    growth = finite(trajectory["corrected_error_growth"], "error growth")
    numbers = {"error_ratio_corrected": ratio,
               "error_ratio_limit": trajectory["error_ratio_limit"],
               "corrected_error_growth": growth, "cycle_radius": trajectory["cycle_radius"],
               "gradient_flow_max_error": trajectory["gradient_flow_max_error"],
               "status": trajectory["status"]}
    return judge(Threshold("max weight error of the corrected slow flow / gradient flow's", ratio,
                           "<=", ERROR_RATIO), numbers,
                 "after the first tenth of the horizon; no steady growth (last tenth ≤ 2× second)",
                 also=[Threshold("corrected flow's error: last tenth / second tenth", growth, "<=",
                                 ERROR_GROWTH)])


register(Claim(
    id="flows.sam_slow.corrected_drift_rate", paper="flows", source="derived (papers/flows.md)",
    statement="Near a valley of minimizers, full-batch SAM drifts along it at the rate "
              "2ηρ²/(2 − ηλ)² · P∇λ (the gradient averaged over its 2-cycle): the drift rate of "
              "the balancedness of f(xᵀy) predicted within 5% for ηλ in [0.2, 1.6].",
    regime=REGIME, lab=LAB, check=_check_corrected_rate))
register(Claim(
    id="flows.sam_slow.limit_drift_rate", paper="wen2023",
    source="Sec. 4 (full-batch SAM's limiting flow, η, ρ → 0)",
    statement="Full-batch SAM's drift along the valley follows the η, ρ → 0 flow −(ηρ²/2) P∇λ "
              "at a finite step: the drift rate of the balancedness of f(xᵀy) predicted within "
              "5% at ηλ = 1.6, the largest step of the grid (a finite-step test of a limit "
              "theorem; expected to fail by the factor (2 − ηλ)²/4; every ηλ's ratio is "
              "reported).",
    regime=REGIME, lab=LAB, check=_check_limit_rate, expected="fail"))
register(Claim(
    id="flows.sam_slow.limit_error_vanishes_with_eta", paper="wen2023",
    source="Sec. 4 (the limit η, ρ → 0); the bound ηλ derived in papers/flows.md",
    statement="The η, ρ → 0 flow is the right limit: its relative error in SAM's drift rate of "
              "the balancedness of f(xᵀy) is at most 1 · ηλ at every ηλ in [0.2, 1.6], so it "
              "vanishes as η → 0.",
    regime=REGIME, lab=LAB, check=_check_limit_consistency))
register(Claim(
    id="flows.sam_slow.weight_error_vs_gradient_flow", paper="flows",
    source="derived (papers/flows.md)",
    statement="The finite-ηλ slow flow predicts the SAM run's weights: its largest error after "
              "the transient is at most 0.2 × gradient flow's, without steady growth (last tenth "
              "of the horizon ≤ 2 × the second tenth).",
    regime="the same toy at ηλ = 0.8, 3 000 steps", lab=LAB, check=_check_weight_error))


LAMBDA_TOLERANCE = 0.02  # the run's λ_max within 2% of the central flow's after the edge


def _check_gd_central(measured, *, quick) -> Verdict:
    central = measured["gd_central"]
    deviation = finite(central["lambda_max_deviation"], "λ_max deviation")
    numbers = {"lambda_max_deviation": deviation, "edge_step": central["edge_step"],
               "run_lambda_max_range": central["run_lambda_max_range"],
               "flow_lambda_max_range": central["flow_lambda_max_range"],
               "error_ratio": central["error_ratio"], "status": central["status"]}
    return judge(Threshold("max |λ_max(run) / λ_max(central flow) − 1| after the edge", deviation,
                           "<=", LAMBDA_TOLERANCE), numbers,
                 "records every 100 steps from the first record at the edge")


register(Claim(
    id="flows.gd_central.tanh_net_lambda_max", paper="flows",
    source="Cohen, Damian, Talwalkar, Kolter, Lee 2025 (central flow, one eigenvalue at the edge)",
    statement="Once GD reaches the edge 2/η, the GD central flow predicts its λ_max within 2% "
              "(records every 100 steps) on a width-20 tanh network fitted to Chebyshev T₄ "
              "(expected to fail: the run overshoots the edge in catapult cycles).",
    regime="width-20 tanh net, 20 points of T₄ on [−1, 1], squared loss, GD with η = 0.2 "
           "(2/η = 10), 6 000 steps; full size only", lab=LAB, check=_check_gd_central,
    expected="fail"))


USAM_REGIME = ("the width-20 tanh network, data, start and η = 0.2 of the GD claim above; USAM "
               "with ρ = 0.05 (edge ηλ(1 + ρλ) = 2 at λ = 7.32), 6 000 steps, records every 100; "
               "full size only")


def _usam_numbers(measured) -> dict:
    central = measured["usam_central"]
    keys = ("lambda_max_deviation", "mean_lambda_max_deviation", "edge_lambda", "edge_step",
            "run_lambda_max_range", "flow_lambda_max_range", "error_ratio", "error_growth",
            "flow_stopped_at", "solver_steps", "status")
    return {key: central[key] for key in keys}


def _usam_premises(numbers) -> list:
    """The central flow's premise: the flow reaches USAM's edge (and is integrated to the end)."""
    return [Threshold("first record at USAM's edge (premise: the edge is reached, >= 0)",
                      finite(numbers["edge_step"], "edge step"), ">=", 0),
            Threshold("record where the flow stopped (premise: none, -1)",
                      finite(numbers["flow_stopped_at"], "flow stop"), "==", -1)]


def _check_usam_lambda(measured, *, quick) -> Verdict:
    numbers = _usam_numbers(measured)
    deviation = finite(numbers["lambda_max_deviation"], "λ_max deviation")
    return judge(Threshold("max |λ_max(run) / λ_max(USAM central flow) − 1| after the edge",
                           deviation, "<=", LAMBDA_TOLERANCE), numbers,
                 "records every 100 steps from the first record at USAM's edge",
                 also=_usam_premises(numbers))


def _check_usam_weight_error(measured, *, quick) -> Verdict:
    numbers = _usam_numbers(measured)
    ratio = finite(numbers["error_ratio"], "error ratio")
    growth = finite(numbers["error_growth"], "error growth")
    return judge(Threshold("max weight error of the USAM central flow / gradient flow's after "
                           "the edge", ratio, "<=", ERROR_RATIO), numbers,
                 "‖w_run − w_flow‖ at the records from the first one at USAM's edge",
                 also=[*_usam_premises(numbers),
                       Threshold("max error in the second half after the edge / first half",
                                 growth, "<=", ERROR_GROWTH)])


register(Claim(
    id="flows.usam_central.tanh_net_lambda_max", paper="flows",
    source="derived (papers/flows.md: the USAM central flow)",
    statement="Once USAM reaches its edge ηλ(1 + ρλ) = 2, the USAM central flow predicts its "
              "λ_max within 2% (records every 100 steps; premise: the flow reaches the edge).",
    regime=USAM_REGIME, lab=LAB, check=_check_usam_lambda, expected="fail"))

def _check_usam_mean_lambda(measured, *, quick) -> Verdict:
    numbers = _usam_numbers(measured)
    deviation = abs(finite(numbers["mean_lambda_max_deviation"], "mean λ_max deviation"))
    return judge(Threshold("|mean λ_max(run) / mean λ_max(USAM central flow) − 1| after the edge",
                           deviation, "<=", LAMBDA_TOLERANCE), numbers,
                 "means over the records every 100 steps from the first one at USAM's edge",
                 also=_usam_premises(numbers))


register(Claim(
    id="flows.usam_central.tanh_net_mean_lambda_max", paper="flows",
    source="derived (papers/flows.md: the USAM central flow, edge ηλ(1 + ρλ) = 2)",
    statement="After USAM's edge the run's λ_max averaged over the records is within 2% of the "
              "USAM central flow's (which holds ηλ(1 + ρλ) = 2; GD's edge 2/η would be 37% off).",
    regime=USAM_REGIME, lab=LAB, check=_check_usam_mean_lambda))

register(Claim(
    id="flows.usam_central.tanh_net_weight_error", paper="flows",
    source="derived (papers/flows.md: the USAM central flow)",
    statement="After USAM's edge the USAM central flow's largest weight-space error against the "
              "run is at most 0.2 × gradient flow's, without steady growth (largest error in "
              "the second half after the edge ≤ 2 × the first half's).",
    regime=USAM_REGIME, lab=LAB, check=_check_usam_weight_error))


VALLEY_DRIFT_TOLERANCE = 0.05  # the flow's drift of the moving quantity within 5% of the run's
VALLEY_REGIMES = {
    "diagonal_net": "diagonal net β = u⊙v on sparse regression (n = 3, d = 6, 1-sparse target, "
                    "seed 0), SAM at ηλ = 0.8 started 0.01 off the valley point GD reaches, ρ "
                    "giving the drift coefficient 2ηρ²/(2 − ηλ)² = 5e-5, 30 000 steps",
    "matrix_sensing": "rank-1 matrix sensing, 3 × 3, factors of 2 columns, 5 Gaussian "
                      "measurements (seed 0), SAM at ηλ = 0.8 started 0.01 off the valley point "
                      "GD reaches, drift coefficient 5e-5, 15 000 steps"}


def _valley_numbers(measured, model: str) -> dict:
    valley = measured["valley_models"][model]
    keys = ("run_drift", "flow_drift", "gradient_flow_drift", "drift_ratio", "error_ratio",
            "error_growth", "lr", "rho", "lambda_max", "start_loss", "flow_stopped_at",
            "status")
    return {key: valley[key] for key in keys}


VALLEY_START_LOSS = 1e-3  # premise "near the valley": the loss where the run starts


def _valley_premises(numbers) -> list:
    """The slow flow's premises: a 2-cycle exists (ηλ < 2) and the run starts near the valley."""
    eta_lambda = finite(numbers["lr"], "η") * finite(numbers["lambda_max"], "λ_max")
    return [Threshold("ηλ at the valley point (premise < 2)", eta_lambda, "<", 2.0),
            Threshold("loss at the start (premise: near the valley)",
                      finite(numbers["start_loss"], "start loss"), "<=", VALLEY_START_LOSS)]


def _valley_drift_check(model: str, quantity: str):
    def check(measured, *, quick) -> Verdict:
        numbers = _valley_numbers(measured, model)
        ratio = finite(numbers["drift_ratio"], "drift ratio")
        return judge(Threshold(f"|flow drift / run drift − 1| of {quantity}", abs(ratio - 1),
                               "<=", VALLEY_DRIFT_TOLERANCE), numbers,
                     f"the change of {quantity} over the horizon, corrected slow flow against the "
                     "SAM run (gradient flow's change is reported)",
                     also=_valley_premises(numbers))
    check.__name__ = f"_check_{model}_drift"
    return check


def _valley_error_check(model: str):
    def check(measured, *, quick) -> Verdict:
        numbers = _valley_numbers(measured, model)
        ratio = finite(numbers["error_ratio"], "error ratio")
        growth = finite(numbers["error_growth"], "error growth")
        return judge(Threshold("max weight error of the corrected slow flow / gradient flow's",
                               ratio, "<=", ERROR_RATIO), numbers,
                     "after the first tenth of the horizon; no steady growth (last tenth ≤ 2× "
                     "second)",
                     also=[Threshold("corrected flow's error: last tenth / second tenth", growth,
                                     "<=", ERROR_GROWTH)] + _valley_premises(numbers))
    check.__name__ = f"_check_{model}_error"
    return check


for _model, _quantity, _name in (("diagonal_net", "‖β‖₁", "l1_drift"),
                                 ("matrix_sensing", "the nuclear norm ‖LRᵀ‖_*", "nuclear_drift")):
    register(Claim(
        id=f"flows.sam_slow.{_model}_{_name}", paper="flows", source="derived (papers/flows.md)",
        statement=f"Near the valley of a {_model.replace('_', ' ')}, the finite-ηλ slow flow "
                  f"predicts the change of {_quantity} over a long full-batch SAM run (which "
                  "gradient flow nearly conserves) within 5% (ηλ = 0.8 < 2).",
        regime=VALLEY_REGIMES[_model], lab=LAB, check=_valley_drift_check(_model, _quantity)))
    register(Claim(
        id=f"flows.sam_slow.{_model}_weight_error", paper="flows",
        source="derived (papers/flows.md)",
        statement=f"Near the valley of a {_model.replace('_', ' ')}, the finite-ηλ slow flow's "
                  "largest weight error against a long full-batch SAM run after the first tenth "
                  "of the horizon is at most 0.2 × gradient flow's, without steady growth (last "
                  "tenth ≤ 2 × the second tenth; ηλ = 0.8 < 2).",
        regime=VALLEY_REGIMES[_model], lab=LAB, check=_valley_error_check(_model)))


LR_TO_ZERO_FALL = 1.5  # error ratio at η over that at η/4: at least 1.5 (≈ 1.22 per halving)
LR_TO_ZERO_REGIME = ("the sharpening toy L(x, s) = ½sx² − as (a = 0.5, unbounded sharpening), "
                     "started at x = 0.1, s₀ two below the edge; η ∈ {0.1, 0.05, 0.025}, {rule}; "
                     "the edge reached at ηt = 4, horizon ηt = 20 (200, 400, 800 steps), 200 "
                     "records at equal ηt; full size only")


def _lr_to_zero_check(rule: str, name: str):
    def check(measured, *, quick) -> Verdict:
        rows = measured["central_lr_to_zero"][rule]
        ratios = [finite(row["error_ratio"], "error ratio") for row in rows]
        numbers = {"lrs": [row["lr"] for row in rows], "rhos": [row["rho"] for row in rows],
                   "error_ratios": ratios,
                   "central_errors": [row["central_error"] for row in rows],
                   "gradient_errors": [row["gradient_error"] for row in rows],
                   "centre_error_ratios": [row["centre_error_ratio"] for row in rows],
                   "run_max_edge": [row["run_max_edge"] for row in rows],
                   "flow_stopped_at": [row["flow_stopped_at"] for row in rows],
                   "statuses": [row["status"] for row in rows]}
        fall = ratios[0] / ratios[-1]
        numbers["fall_over_two_halvings"] = fall
        premises = [
            Threshold(f"smallest over η of the run's largest ημ/2 (premise: {name} reaches its "
                      "edge at every η, >= 1)",
                      finite_min([row["run_max_edge"] for row in rows], "run edge"), ">=", 1.0),
            Threshold("latest record where a central flow stopped (premise: none, -1)",
                      finite_max([row["flow_stopped_at"] for row in rows], "flow stop"), "==",
                      -1)]
        return judge(Threshold(f"{name} central flow's weight error / gradient flow's: at η = 0.1 "
                               "over at η = 0.025", fall, ">=", LR_TO_ZERO_FALL), numbers,
                     "largest ‖w_run − w_flow‖ over the records from the first one at the edge, "
                     "divided by gradient flow's on the same run, at each η",
                     also=premises)
    check.__name__ = f"_check_{rule}_lr_to_zero"
    return check


register(Claim(
    id="flows.gd_central.error_vanishes_with_eta", paper="flows",
    source="Cohen, Damian, Talwalkar, Kolter, Lee 2025 (the central flow as GD's time-averaged "
           "trajectory); issue 28's test: errors shrinking as η → 0",
    statement="The GD central flow tracks GD better as η → 0: on a toy with unbounded "
              "sharpening, compared at equal ηt, its largest weight error after the edge as a "
              "fraction of gradient flow's falls by at least 1.5× from η = 0.1 to η = 0.025 "
              "(premises: the run reaches the edge at every η, the flow is integrated to the "
              "end; expected to fail: the run circles the edge in a cycle whose size does not "
              "shrink with η).",
    regime=LR_TO_ZERO_REGIME.replace("{rule}", "GD"), lab=LAB, check=_lr_to_zero_check("gd", "GD"),
    expected="fail"))
register(Claim(
    id="flows.usam_central.error_vanishes_with_eta", paper="flows",
    source="derived (papers/flows.md: the USAM central flow); issue 28's test: errors shrinking "
           "as η → 0 at fixed ρ/η",
    statement="At fixed ρ/η = 0.5 the USAM central flow tracks USAM better as η → 0: on a toy "
              "with unbounded sharpening, compared at equal ηt, its largest weight error after "
              "the edge ηλ(1 + ρλ) = 2 as a fraction of gradient flow's falls by at least 1.5× "
              "from η = 0.1 to η = 0.025 (premises as for GD; expected to fail, as for GD).",
    regime=LR_TO_ZERO_REGIME.replace("{rule}", "USAM with ρ = η/2"), lab=LAB,
    check=_lr_to_zero_check("usam", "USAM"), expected="fail"))
