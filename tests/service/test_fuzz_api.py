"""Property-based fuzzing of the HTTP API against a running server: no input, however odd,
gets a 5xx or takes the process down.

Two sources of cases, both bounded (a few hundred cases in all):
- schemathesis, from the server's own OpenAPI document (every operation, valid and invalid
  data for its declared schemas);
- hypothesis, for what a schema-driven tool will not send: arbitrary bytes, arbitrary JSON,
  near-miss inference requests with NaN/Infinity, huge or negative numbers, wrong nesting.
"""

from __future__ import annotations

import json
import math

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    status_code_conformance,
)
from serving_kit import Server

from nepse_predictor.features import FEATURE_NAMES

INFER = "/v2/models/nepse-predictor/infer"
POST_PATHS = ("/v1/predict", "/v1/predict/bars", INFER)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_operations_never_answer_5xx(server: Server, mode: GenerationMode) -> None:
    """Every operation in /openapi.json, with data that fits its schema and data that does not."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    checked = 0
    for operation in operations:

        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case) -> None:
            nonlocal checked
            checked += 1
            case.call_and_validate(
                checks=[not_a_server_error, status_code_conformance, content_type_conformance],
                timeout=30,
            )

        try:
            check()
        except Unsatisfiable:
            # Nothing in a GET without parameters can be made invalid.
            assert mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET"
    assert checked >= len(operations) // 2


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -0.0, 1e-320, 3.5e38, -3.5e38, 1e308]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(max_size=8), children, max_size=6),
    ),
    max_leaves=30,
)


def dumps(value) -> bytes:
    # Python's json writes NaN/Infinity as bare tokens, as many real clients do.
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def near_miss_infer(draw) -> dict:
    rows = draw(st.integers(min_value=0, max_value=4))
    width = draw(st.sampled_from([len(FEATURE_NAMES), len(FEATURE_NAMES) - 1, 1]))
    shape = draw(st.sampled_from([[rows, width], [rows], [rows, width, 1], [-1, width], []]))
    data = draw(st.lists(numbers, max_size=rows * width + 2))
    nested = draw(st.booleans())
    if nested and width and data:
        data = [data[i : i + width] for i in range(0, len(data), width)]
    tensor = {
        "name": draw(st.sampled_from(["features", *FEATURE_NAMES[:2], ""])),
        "shape": shape,
        "datatype": draw(st.sampled_from(["FP32", "FP64", "INT64", "BYTES", 5])),
        "data": data,
    }
    if draw(st.booleans()):
        tensor.pop(draw(st.sampled_from(list(tensor))))
    body: dict = {"inputs": draw(st.sampled_from([[tensor], [tensor, tensor], tensor]))}
    if draw(st.booleans()):
        body["outputs"] = [{"name": draw(st.sampled_from(["probability", "label", "x"]))}]
    if draw(st.booleans()):
        body["id"] = draw(scalars)
    return body


@st.composite
def near_miss_features(draw) -> dict:
    names = draw(st.lists(st.sampled_from([*FEATURE_NAMES, "extra"]), max_size=12))
    row = {name: draw(numbers) for name in names}
    if draw(st.booleans()):
        return {"features": row}
    return {"instances": draw(st.lists(st.just(row), max_size=3))}


def assert_handled(server: Server, path: str, body: bytes) -> None:
    response = server.client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, (path, body[:300], response.text)
    assert response.status_code in (200, 413, 422), (path, response.status_code, response.text)
    assert "Traceback" not in response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert error.startswith(response.json()["field"])


@FUZZ
@given(path=st.sampled_from(POST_PATHS), body=st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_cleanly(server: Server, path: str, body: bytes) -> None:
    assert_handled(server, path, body)


@FUZZ
@given(path=st.sampled_from(POST_PATHS), value=json_values)
def test_arbitrary_json_is_rejected_cleanly(server: Server, path: str, value) -> None:
    assert_handled(server, path, dumps(value))


@FUZZ
@given(body=near_miss_infer())
def test_near_miss_inference_requests(server: Server, body: dict) -> None:
    assert_handled(server, INFER, dumps(body))


@FUZZ
@given(body=near_miss_features())
def test_near_miss_feature_rows(server: Server, body: dict) -> None:
    response = server.client.post("/v1/predict", content=dumps(body))
    assert response.status_code in (200, 422), response.text
    rows = [body["features"]] if "features" in body else body["instances"]
    valid = bool(rows) and all(
        set(row) == set(FEATURE_NAMES)
        and all(
            not isinstance(v, bool) and math.isfinite(v) and abs(v) <= 3.4028234663852886e38
            for v in row.values()
        )
        for row in rows
    )
    assert (response.status_code == 200) == valid, (body, response.text)


def test_the_server_survived_the_fuzzing(server: Server) -> None:
    assert server.process.poll() is None
    assert server.client.get("/ready").status_code == 200
    assert server.metric("nepse_http_requests_total", status="500") == 0


def test_schema_valid_feature_requests_are_accepted(server: Server) -> None:
    """schemathesis's positive-data check on /v1/predict: whatever its OpenAPI schema allows,
    the validator accepts (2xx). The bars and tensor shapes carry rules JSON Schema cannot
    state (high >= low, len(data) == prod(shape)), so they are fuzzed for 5xx only, above."""
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    [operation] = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path == "/v1/predict" and result.ok().method.upper() == "POST"
    ]
    cases = 0

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def check(case) -> None:
        nonlocal cases
        cases += 1
        case.call_and_validate(checks=[not_a_server_error, positive_data_acceptance], timeout=30)

    check()
    assert cases >= 30
