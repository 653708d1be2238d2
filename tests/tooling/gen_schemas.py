"""Generate offline JSON schemas for kubeconform.

Built-in kinds come from the Kubernetes OpenAPI v2 document (``api/openapi-spec/swagger.json``
in the k8s.io/kubernetes module, or ``/openapi/v2`` of a running API server); custom resources
from the CRD YAML files of the projects the chart targets. Output layout (``--out``):

    kubernetes-version                                   e.g. ``1.36.3``
    kubernetes/v<version>-standalone{,-strict}/<kind>[-<group>]-<version>.json
    crds/<group>/<kind>_<version>{,-strict}.json

which ``scripts/kubeconform.sh`` reads with these ``-schema-location`` templates:

    <out>/kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/
        {{ .ResourceKind }}{{ .KindSuffix }}.json
    <out>/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}{{ .StrictSuffix }}.json

Conversion rules, chosen to match what the API server accepts:
- every ``$ref`` is inlined (standalone schemas); a recursive reference becomes ``{}``;
- ``int-or-string`` (format or ``x-kubernetes-int-or-string``) accepts an integer or a string,
  and resource quantities accept a number or a string;
- an optional field also accepts ``null`` (the server treats it as unset);
- the ``-strict`` variants forbid fields a schema does not declare
  (``additionalProperties: false``), except under ``x-kubernetes-preserve-unknown-fields``;
- descriptions are dropped to keep the files small.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING: Schema = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
NUMBER_OR_STRING: Schema = {"anyOf": [{"type": "number"}, {"type": "string"}]}
DROP_KEYS = {"description", "example", "examples", "externalDocs"}


def allow_null(schema: Schema) -> Schema:
    """Return ``schema`` widened to also accept JSON null."""
    if schema == {}:
        return schema
    out = dict(schema)
    t = out.get("type")
    if isinstance(t, str):
        out["type"] = [t, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    if isinstance(t, list):
        if "null" not in t:
            out["type"] = [*t, "null"]
        return out
    return {"anyOf": [out, {"type": "null"}]}


class Converter:
    """Turns OpenAPI v2 / CRD structural schemas into standalone JSON schemas."""

    def __init__(self, definitions: dict[str, Schema], strict: bool) -> None:
        self.definitions = definitions
        self.strict = strict

    def convert(self, schema: Schema, stack: tuple[str, ...] = ()) -> Schema:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in stack:
                return {}
            if name == QUANTITY:
                return dict(NUMBER_OR_STRING)
            if name not in self.definitions:
                raise KeyError(f"unresolved $ref {schema['$ref']}")
            return self.convert(self.definitions[name], (*stack, name))

        if schema.get("format") == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
            return dict(INT_OR_STRING)

        out: Schema = {}
        for key, value in schema.items():
            if key in DROP_KEYS or key == "nullable":
                continue
            if key == "properties":
                required = set(schema.get("required", []))
                out[key] = {
                    name: self._property(sub, name in required, stack)
                    for name, sub in value.items()
                }
            elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
                out[key] = self.convert(value, stack)
            elif key in ("allOf", "anyOf", "oneOf"):
                out[key] = [self.convert(sub, stack) for sub in value]
            else:
                out[key] = copy.deepcopy(value)

        if schema.get("x-kubernetes-embedded-resource") and "properties" in out:
            for name in ("apiVersion", "kind"):
                out["properties"].setdefault(name, {"type": ["string", "null"]})
            out["properties"].setdefault("metadata", {"type": ["object", "null"]})

        if (
            self.strict
            and "properties" in out
            and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        if schema.get("nullable"):
            out = allow_null(out)
        return out

    def _property(self, schema: Schema, required: bool, stack: tuple[str, ...]) -> Schema:
        converted = self.convert(schema, stack)
        return converted if required else allow_null(converted)


def kind_suffix(group: str, version: str) -> str:
    """The ``{{ .KindSuffix }}`` kubeconform computes for an apiVersion."""
    return f"-{group.split('.')[0]}-{version}" if group else f"-{version}"


def write_json(path: Path, schema: Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))


def generate_builtin(openapi: Path, k8s_version: str, out: Path) -> int:
    doc = json.loads(openapi.read_text())
    definitions: dict[str, Schema] = doc["definitions"]
    count = 0
    for strict in (False, True):
        conv = Converter(definitions, strict)
        folder = out / "kubernetes" / f"v{k8s_version}-standalone{'-strict' if strict else ''}"
        for name, definition in sorted(definitions.items()):
            gvks = definition.get("x-kubernetes-group-version-kind", [])
            if len(gvks) != 1:  # shared helper types (DeleteOptions, WatchEvent) are no kinds
                continue
            gvk = gvks[0]
            schema = conv.convert({"$ref": f"#/definitions/{name}"})
            schema["$schema"] = "http://json-schema.org/draft-07/schema#"
            file = f"{gvk['kind'].lower()}{kind_suffix(gvk['group'], gvk['version'])}.json"
            write_json(folder / file, schema)
            count += 1
    return count


def iter_crds(folder: Path) -> Iterator[tuple[Path, Schema]]:
    for path in sorted(folder.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                yield path, doc


def generate_crds(folder: Path, out: Path) -> int:
    count = 0
    for path, crd in iter_crds(folder):
        spec = crd["spec"]
        group, kind = spec["group"], spec["names"]["kind"]
        for version in spec["versions"]:
            root = (version.get("schema") or {}).get("openAPIV3Schema")
            if not version.get("served", True) or root is None:
                continue
            root = copy.deepcopy(root)
            props = root.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
            root.setdefault("type", "object")
            for strict in (False, True):
                schema = Converter({}, strict).convert(root)
                schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                name = f"{kind.lower()}_{version['name']}{'-strict' if strict else ''}.json"
                write_json(out / "crds" / group / name, schema)
            count += 1
        if not spec["versions"]:
            raise SystemExit(f"{path}: CRD {kind} has no versions")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--openapi", type=Path, required=True, help="OpenAPI v2 swagger.json")
    parser.add_argument("--kubernetes-version", required=True, help="e.g. v1.36.3")
    parser.add_argument("--crds", type=Path, required=True, help="folder of CRD YAML files")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    version = args.kubernetes_version.removeprefix("v")
    args.out.mkdir(parents=True, exist_ok=True)
    builtin = generate_builtin(args.openapi, version, args.out)
    crds = generate_crds(args.crds, args.out)
    if crds == 0:
        raise SystemExit(f"no CustomResourceDefinition found under {args.crds}")
    (args.out / "kubernetes-version").write_text(version + "\n")
    print(f"wrote {builtin} built-in and {crds} custom resource schemas to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
