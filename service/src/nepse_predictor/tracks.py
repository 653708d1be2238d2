"""The tracks a server can run as (NEPSE_TRACK): one closed set for settings, metrics and logs.

stable, canary, blue, green and shadow are the chart's own workloads; active and preview are
the roles of an Argo Rollouts blue-green, which the controller sets on each pod.
"""

from typing import Literal, get_args

Track = Literal["stable", "canary", "blue", "green", "shadow", "active", "preview"]
TRACKS: tuple[str, ...] = get_args(Track)
