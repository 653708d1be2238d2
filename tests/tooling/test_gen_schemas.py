"""The OpenAPI/CRD to JSON schema conversion rules of tests/tooling/gen_schemas.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest

spec = importlib.util.spec_from_file_location(
    "gen_schemas", Path(__file__).with_name("gen_schemas.py")
)
assert spec and spec.loader
gen_schemas = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_schemas)

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [port]
              properties:
                port: {x-kubernetes-int-or-string: true}
                weight: {type: integer, nullable: true}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true,
                        properties: {known: {type: string}}}
    - name: v0
      served: false
      storage: false
      schema: {openAPIV3Schema: {type: object}}
"""


@pytest.fixture
def widget_schema(tmp_path: Path) -> dict:
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "widget.yaml").write_text(CRD)
    assert gen_schemas.generate_crds(tmp_path / "crds", tmp_path / "out") == 1
    folder = tmp_path / "out" / "crds" / "example.com"
    assert sorted(p.name for p in folder.iterdir()) == ["widget_v1-strict.json", "widget_v1.json"]
    return json.loads((folder / "widget_v1-strict.json").read_text())


def widget(spec: dict) -> dict:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    "spec",
    [
        {"port": 80},
        {"port": "http"},
        {"port": 80, "weight": None},
        {"port": 80, "extra": {"known": "x", "anything": {"goes": 1}}},
    ],
)
def test_crd_schema_accepts_what_the_api_server_accepts(widget_schema: dict, spec: dict) -> None:
    jsonschema.validate(widget(spec), widget_schema)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({}, "'port' is a required property"),
        ({"port": 1.5}, "1.5 is not valid"),
        ({"port": 80, "wieght": 1}, "'wieght' was unexpected"),
        ({"port": 80, "weight": "1"}, "'1' is not of type"),
    ],
)
def test_strict_crd_schema_rejects_wrong_and_unknown_fields(
    widget_schema: dict, spec: dict, error: str
) -> None:
    with pytest.raises(jsonschema.ValidationError, match=error):
        jsonschema.validate(widget(spec), widget_schema)


def test_builtin_refs_are_inlined_and_recursion_is_cut(tmp_path: Path) -> None:
    openapi = {
        "definitions": {
            "io.example.Quantity": {"type": "string"},
            "io.example.Node": {
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Node", "version": "v1"}],
                "properties": {
                    "child": {"$ref": "#/definitions/io.example.Node"},
                    "cpu": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
                    "port": {"type": "string", "format": "int-or-string"},
                },
            },
            "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
        }
    }
    (tmp_path / "swagger.json").write_text(json.dumps(openapi))
    gen_schemas.generate_builtin(tmp_path / "swagger.json", "1.0.0", tmp_path / "out")
    strict = json.loads(
        (tmp_path / "out/kubernetes/v1.0.0-standalone-strict/node-v1.json").read_text()
    )
    props = strict["properties"]
    assert props["child"] == {}
    jsonschema.validate({"cpu": 2, "port": 8080, "child": {"any": 1}}, strict)
    jsonschema.validate({"cpu": "500m", "port": "http"}, strict)
    with pytest.raises(jsonschema.ValidationError, match="'extra' was unexpected"):
        jsonschema.validate({"extra": 1}, strict)
    loose = json.loads((tmp_path / "out/kubernetes/v1.0.0-standalone/node-v1.json").read_text())
    jsonschema.validate({"extra": 1}, loose)


def test_kind_suffix_matches_kubeconform() -> None:
    assert gen_schemas.kind_suffix("", "v1") == "-v1"
    assert gen_schemas.kind_suffix("apps", "v1") == "-apps-v1"
    assert gen_schemas.kind_suffix("networking.k8s.io", "v1") == "-networking-v1"
