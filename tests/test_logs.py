"""Log lines (service/logs.py): JSON or text, the request id on each, the
access line once per request; from a real `todo-api serve`."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tests.conftest import base_env
from tests.launcher import http_get, launched


def test_logs_are_json_lines_with_the_request_id_on_every_line(unreachable_database_url):
    env = {**base_env(unreachable_database_url), "LOG_FORMAT": "json"}
    with launched(env) as service:
        req = urllib.request.Request(service.url + "/ready", headers={"X-Request-ID": "ops-42"})  # noqa: S310
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=10)  # noqa: S310
        service.stop()
        lines = [json.loads(line) for line in service.output().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("request_id") == "ops-42"]
    access = [line for line in mine if line["logger"] == "service.access"]
    assert len(access) == 1
    assert access[0]["method"] == "GET"
    assert access[0]["path"] == "/ready"
    assert access[0]["status"] == 503
    assert access[0]["duration_ms"] >= 0
    # The warning about the 503 was logged inside the request: same id.
    assert any(line["level"] == "WARNING" and line["logger"] != "service.access" for line in mine)
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line)


def test_text_logs_are_readable_lines_with_the_request_id(migrated_database):
    env = {**base_env(migrated_database), "LOG_FORMAT": "text"}
    with launched(env) as service:
        assert http_get(service.url + "/health", {"X-Request-ID": "txt-7"}).status == 200
        assert service.stop() == 0
        lines = service.output().splitlines()
    access = [line for line in lines if "[txt-7]" in line]
    assert len(access) == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    service\.access \[txt-7\] "
        r"GET /health 200 \d+\.\d\dms",
        access[0],
    ), access[0]
    assert any(line.endswith("stopped") for line in lines)  # flushed at exit, in order
