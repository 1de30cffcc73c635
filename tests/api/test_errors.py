"""Every error in the one envelope of API.md, with the request id, and nothing internal leaked."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from appliance.logs import JsonFormatter
from tests.support import wait_for


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    assert isinstance(error["details"], dict)
    body: dict[str, object] = error
    return body


def test_unknown_route_is_404(api: httpx.Client) -> None:
    error = assert_envelope(api.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert "/api/v1/nothing-here" in str(error["message"])


def test_wrong_method_is_405_with_allow(api: httpx.Client) -> None:
    response = api.delete("/health/live")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET"


def test_malformed_json_is_400(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/_probe/widgets", content=b'{"name": "a", ', headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, "MALFORMED_JSON")


def test_validation_failure_is_422_with_fields(api: httpx.Client) -> None:
    error = assert_envelope(
        api.post("/api/v1/_probe/widgets", json={"name": "", "size": 0}), 422, "VALIDATION_FAILED"
    )
    details = error["details"]
    assert isinstance(details, dict)
    locs = [f["loc"] for f in details["fields"]]
    assert ["body", "name"] in locs
    assert ["body", "size"] in locs
    assert "name" in str(error["message"])


def test_wrong_content_type_is_415(api: httpx.Client) -> None:
    response = api.post("/api/v1/_probe/widgets", content=b"name=a", headers={"content-type": "text/plain"})
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_valid_body_is_accepted(api: httpx.Client) -> None:
    response = api.post("/api/v1/_probe/widgets", json={"name": "a", "size": 3})
    assert response.status_code == 201
    assert response.json() == {"name": "a", "size": 3}


def test_oversized_body_is_413_by_length(api: httpx.Client) -> None:
    error = assert_envelope(
        api.post("/api/v1/_probe/widgets", json={"name": "a" * 5000, "size": 1}), 413, "PAYLOAD_TOO_LARGE"
    )
    assert "2048" in str(error["message"])


def test_oversized_chunked_body_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"a" * 500
        yield b'", "size": 1}'

    response = api.post(
        "/api/v1/_probe/widgets",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_unhandled_exception_is_500_without_internals(
    api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = api.get("/api/v1/_probe/crash")
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    for leak in ("hunter2", "SELECT", "Traceback", "RuntimeError"):
        assert leak not in response.text
    assert error["message"] == "The appliance could not complete the request."
    assert any("hunter2" in (r.exc_text or str(r.exc_info)) for r in caplog.records), (
        "the log keeps the cause"
    )


def test_appliance_error_keeps_code_and_details(api: httpx.Client) -> None:
    error = assert_envelope(api.get("/api/v1/_probe/conflict"), 409, "SLUG_TAKEN")
    assert error["details"] == {"slug": "acme"}


def test_request_id_is_generated_echoed_or_replaced(api: httpx.Client) -> None:
    generated = api.get("/health/live").headers["x-request-id"]
    assert re.fullmatch(r"req_[0-9a-f]{32}", generated)
    assert (
        api.get("/health/live", headers={"X-Request-ID": "client-123"}).headers["x-request-id"]
        == "client-123"
    )
    hostile = api.get("/health/live", headers={"X-Request-ID": "a b<script>"}).headers["x-request-id"]
    assert hostile.startswith("req_")


def test_every_log_line_of_a_request_carries_its_id(
    api: httpx.Client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    formatter = JsonFormatter("api")
    with caplog.at_level(logging.INFO):
        api.get("/api/v1/_probe/crash", headers={"X-Request-ID": "trace-me-42"})
    lines = [orjson.loads(formatter.format(r)) for r in caplog.records if r.name.startswith("appliance")]
    # The access line is written straight to stderr (see appliance.logs.AccessLog), in the same format,
    # once the response has gone out: the client may read its answer before the server writes it.
    stderr: list[str] = []

    def access_written() -> bool:
        stderr.extend(capfd.readouterr().err.splitlines())
        return any('"appliance.access"' in line for line in stderr)

    wait_for(access_written, timeout=10, what="the access line")
    lines += [orjson.loads(line) for line in stderr if '"appliance.access"' in line]
    assert {line["logger"] for line in lines} >= {"appliance.api", "appliance.access"}
    assert all(line["request_id"] == "trace-me-42" for line in lines)
    access = next(line for line in lines if line["logger"] == "appliance.access")
    assert access["status"] == 500
    assert access["route"] == "/api/v1/_probe/crash"
    assert access["process"] == "api"


def test_openapi_documents_the_error_envelope(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert "500" in operation["responses"], f"{method.upper()} {path} does not document 500"
