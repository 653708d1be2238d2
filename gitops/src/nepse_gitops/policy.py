"""How releases enter an environment: the `promotion:` section of its policy.yaml.

    promotion:
      strategy: canary     # rolling (default; blueGreen in a blueGreen environment),
                           # canary or blueGreen

The release plan (`release:`) is release_plan.py's, the gate's thresholds (`gate:`)
gate_config.py's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .environments import Environment
from .errors import GitopsError
from .values import base_strategy

Strategy = Literal["rolling", "canary", "blueGreen"]


class PromotionSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    strategy: Strategy | None = None


def parse_promotion(section: object, where: str) -> PromotionSection:
    """The `promotion:` value of a policy file (None: the defaults)."""
    try:
        return PromotionSection.model_validate(section or {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(("promotion", *(str(p) for p in error["loc"])))
            if error["type"] == "literal_error":
                problems.append(
                    f"{field} is {error['input']!r}; expected rolling, canary or blueGreen"
                )
            elif error["type"] == "extra_forbidden":
                problems.append(f"{field}: unknown key")
            elif error["type"] == "model_type":
                problems.append(f"{field} must be a mapping, got {error['input']!r}")
            else:
                problems.append(f"{field}: {error['msg']}, got {error['input']!r}")
        raise GitopsError(f"{where}: " + "; ".join(problems)) from None


def promotion_strategy(env: Environment) -> Strategy:
    """How a promotion enters: rolling (replace stable), canary, or blueGreen (idle colour)."""
    where = env.rel(env.policy_path)
    value = parse_promotion(env.policy().get("promotion"), where).strategy
    base = base_strategy(env)
    if value is None:
        return "blueGreen" if base == "blueGreen" else "rolling"
    if (value == "blueGreen") != (base == "blueGreen"):
        raise GitopsError(
            f"{where}: promotion.strategy {value} does not fit rollout.strategy {base} in "
            f"{env.rel(env.values_path)} (blueGreen releases need a blueGreen environment)"
        )
    if value == "canary" and base != "rolling":
        raise GitopsError(
            f"{where}: promotion.strategy canary needs rollout.strategy rolling in "
            f"{env.rel(env.values_path)}: a canary release switches to canary in "
            "release.yaml and back when it finishes"
        )
    return value
