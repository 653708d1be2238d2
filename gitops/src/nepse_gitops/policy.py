"""How releases enter an environment: the `promotion:` section of its policy.yaml."""

from __future__ import annotations

from .environments import Environment
from .errors import GitopsError
from .values import base_strategy


def promotion_strategy(env: Environment) -> str:
    """How a promotion enters: rolling (replace stable), canary, or blueGreen (idle colour)."""
    where = env.rel(env.policy_path)
    promotion = env.policy().get("promotion") or {}
    value = promotion.get("strategy")
    base = base_strategy(env)
    if value is None:
        return "blueGreen" if base == "blueGreen" else "rolling"
    if value not in ("rolling", "canary", "blueGreen"):
        raise GitopsError(
            f"{where}: promotion.strategy is {value!r}; expected rolling, canary or blueGreen"
        )
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
