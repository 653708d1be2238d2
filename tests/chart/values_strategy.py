"""Hypothesis strategies that draw chart values from values.schema.json.

The strategy walks the schema (objects, maps, arrays, strings by pattern, bounded numbers,
enums, oneOf, $ref) and keeps only drawings the real validator accepts, so if/then rules hold
too. Objects the chart passes through verbatim as Kubernetes types (securityContext, affinity,
tolerations, NetworkPolicy peers, HPA behaviour ...) have no schema of their own here; they are
drawn from PASSTHROUGH, a few realistic examples each, because their correctness is the API's
own schema (checked by kubeconform and by the API server on install), not the chart's.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import yaml
from chartkit import CHART
from hypothesis import strategies as st

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
PEERS = [
    [],
    [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-ingress"}}}],
    [
        {
            "namespaceSelector": {"matchLabels": {"team": "observability"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ],
]
PASSTHROUGH: dict[str, list[Any]] = {
    "global": [{}],
    # Sections of an environment's policy.yaml that nepse-gitops validates; the chart reads
    # release.shadow.minAgreement only.
    "promotion": [{}, {"strategy": "canary"}],
    "release": [{}, {"shadow": {"minAgreement": 0.97}}, {"canary": {"steps": []}}],
    "podSecurityContext": [
        {},
        {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    ],
    "securityContext": [
        {},
        {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
    ],
    "affinity": [
        {},
        {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 50,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app": "nepse"}},
                        },
                    }
                ]
            }
        },
    ],
    "tolerations": [
        [],
        [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
    ],
    "topologySpread.constraints": [
        [],
        [
            {
                "maxSkew": 2,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
            }
        ],
    ],
    "autoscaling.behavior": [
        {},
        {"scaleDown": {"stabilizationWindowSeconds": 60}},
    ],
    "autoscaling.customMetrics": [
        [],
        [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "nepse_requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "20"},
                },
            }
        ],
    ],
    "networkPolicy.ingressControllerFrom": PEERS,
    "networkPolicy.metricsFrom": PEERS,
    "networkPolicy.extraFrom": PEERS,
    "extraEnv[].valueFrom": [{"fieldRef": {"fieldPath": "metadata.name"}}],
}


def _slots() -> st.SearchStrategy[dict[str, dict[str, str]]]:
    """Every slot, filled 19 times in 20: an empty slot that the strategy deploys only makes
    validate.yaml refuse the values, which says little about what the API server accepts."""
    filled = st.fixed_dictionaries(
        {
            "imageTag": st.from_regex(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", fullmatch=True),
            "modelVersion": st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", fullmatch=True),
            "modelSha256": st.just(SHA256),
        },
        optional={"imageDigest": st.sampled_from(["", "sha256:" + SHA256])},
    )
    slot = st.one_of(*[filled] * 19, st.just({"imageTag": "", "modelVersion": ""}))
    return st.fixed_dictionaries(
        {name: slot for name in ("stable", "canary", "shadow", "blue", "green")}
    )


OVERRIDES: dict[str, st.SearchStrategy[Any]] = {"slots": _slots()}


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 64)
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        return st.from_regex(pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)
    return st.text(
        st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]),
        min_size=low,
        max_size=min(high, 32),
    )


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum")
    if integer:
        return st.integers(min_value=low, max_value=high)
    if "multipleOf" in schema:
        step = schema["multipleOf"]
        return st.integers(int(low / step), int(high / step)).map(lambda n: round(n * step, 2))
    floats = st.floats(
        min_value=low,
        max_value=high,
        exclude_min="exclusiveMinimum" in schema,
        allow_nan=False,
        allow_infinity=False,
    )
    return st.one_of(floats, st.integers(int(low or 0), int(min(high or 1000, 1000))))


def _object(schema: dict[str, Any], path: str) -> st.SearchStrategy[Any]:
    properties = schema.get("properties")
    if properties is not None:
        required = set(schema.get("required", []))
        strategies = {
            name: strategy(sub, f"{path}.{name}".lstrip(".")) for name, sub in properties.items()
        }
        return st.fixed_dictionaries(
            {k: v for k, v in strategies.items() if k in required},
            optional={k: v for k, v in strategies.items() if k not in required},
        )
    if "propertyNames" in schema and isinstance(schema.get("additionalProperties"), dict):
        keys = _string({"type": "string", **schema["propertyNames"]})
        return st.dictionaries(keys, strategy(schema["additionalProperties"], path), max_size=3)
    raise KeyError(f"{path}: a free-form object needs examples in PASSTHROUGH")


def strategy(schema: dict[str, Any], path: str = "") -> st.SearchStrategy[Any]:
    """Values for ``schema`` at dotted ``path`` (array items add ``[]``)."""
    if path in PASSTHROUGH:
        return st.sampled_from(PASSTHROUGH[path])
    if path in OVERRIDES:
        return OVERRIDES[path]
    if "$ref" in schema:
        return strategy(_resolve(schema["$ref"]), path)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "oneOf" in schema:
        return st.one_of([strategy(branch, path) for branch in schema["oneOf"]])
    if "allOf" in schema and "type" not in schema:
        return strategy(schema["allOf"][0], path)
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([strategy({**schema, "type": k}, path) for k in kind])
    if kind == "object":
        return _object(schema, path)
    if kind == "array":
        items = strategy(schema.get("items", {}), f"{path}[]")
        return st.lists(
            items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 3), 3)
        )
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    raise KeyError(f"{path}: no strategy for {schema}")


VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
DEFAULTS: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())


def merged(defaults: Any, values: Any) -> Any:
    """Helm's coalescing of user values over the chart's: maps merge, anything else replaces."""
    if isinstance(defaults, dict) and isinstance(values, dict):
        out = dict(defaults)
        for key, value in values.items():
            out[key] = merged(defaults.get(key), value)
        return out
    return values


def chart_values() -> st.SearchStrategy[dict[str, Any]]:
    """User values that, merged over values.yaml as Helm does, values.schema.json accepts
    (Helm validates the merged document)."""
    return strategy(SCHEMA).filter(lambda v: VALIDATOR.is_valid(merged(DEFAULTS, v)))
