"""Claims: the unit of truth. A claim turns a lab's measured numbers into a verdict.

Each claim has an id (``paperkey.topic.statement``), a statement in our own words, the regime
where it should hold, the lab that measures it, the verdict we expect, and ``check(measured)``
returning a :class:`Verdict` with the numbers it used. A check that cannot find its numbers is
"inconclusive", never "pass".
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

from ..errors import ConfigError

VERDICTS = ("pass", "fail", "inconclusive")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a claim's check: "pass", "fail" or "inconclusive", with the numbers."""

    verdict: str
    measured: dict
    detail: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def verdict(condition: bool, measured: dict, detail: str = "") -> Verdict:
    """"pass" if ``condition`` holds, else "fail"; NaN anywhere in ``measured`` -> inconclusive."""
    for value in measured.values():
        if isinstance(value, float) and math.isnan(value):
            return Verdict("inconclusive", measured, "a measured value is NaN: " + detail)
    return Verdict("pass" if bool(condition) else "fail", measured, detail)


@dataclasses.dataclass(frozen=True)
class Claim:
    """A published (or derived) statement with a check that can fail.

    Attributes:
      id: unique id, e.g. ``li2024.balancedness.sam_decreases``.
      paper: paper key (matches the card in papers/), e.g. ``li2024``.
      source: where in the paper (``Thm 2``, ``Lemma 1``, ``derived``).
      statement: the claim in our own words.
      regime: the setting in which it is claimed (and in which we test it).
      lab: the lab whose results.json holds the numbers (``balancedness``).
      check: ``check(measured: dict) -> Verdict``.
      expected: the verdict we expect ("pass" normally; "fail" where our simulation shows the
        claim breaking and that finding is itself the result).
    """

    id: str
    paper: str
    source: str
    statement: str
    regime: str
    lab: str
    check: Callable[[dict], Verdict]
    expected: str = "pass"

    def evaluate(self, measured: dict) -> dict:
        try:
            outcome = self.check(measured)
        except KeyError as missing:
            outcome = Verdict("inconclusive", {}, f"the lab did not measure {missing}")
        return {"id": self.id, "paper": self.paper, "source": self.source,
                "statement": self.statement, "regime": self.regime, "expected": self.expected,
                "verdict": outcome.verdict, "measured": outcome.measured,
                "detail": outcome.detail}


REGISTRY: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    if claim.id in REGISTRY:
        raise ValueError(f"claim id {claim.id!r} registered twice")
    if claim.expected not in VERDICTS:
        raise ValueError(f"claim {claim.id!r}: expected must be one of {VERDICTS}")
    REGISTRY[claim.id] = claim
    return claim


def get(claim_id: str) -> Claim:
    if claim_id not in REGISTRY:
        raise ConfigError("claim", claim_id, "a registered claim id (see `sharp-theory list`)")
    return REGISTRY[claim_id]


def all_claims() -> list[Claim]:
    return sorted(REGISTRY.values(), key=lambda c: c.id)


def claims_for_lab(lab: str) -> list[Claim]:
    return [c for c in all_claims() if c.lab == lab]
