"""If-Match and If-None-Match (service/tasks/conditional.py): a list of
entity tags, parsed member by member, and refused over 1 KiB."""

from __future__ import annotations

import pytest

from service.middlewares import MAX_LIST_HEADER
from tests.helpers import TASKS, bearer, make_task, problem, user_token


@pytest.fixture
async def ann(client):
    return await user_token(client)


async def patch_if_match(client, ann, header: str):
    """PATCH a new task (version 1) under `If-Match: header`."""
    task, _ = await make_task(client, ann.token)
    return await client.patch(
        f"{TASKS}/{task['id']}",
        json={"completed": True},
        headers={**bearer(ann.token), "If-Match": header},
    )


@pytest.mark.parametrize(
    "header",
    [
        '"999", "1"',
        '  "999" ,W/"7",   "1"  ',
        'junk, "1"',
        '"a,b", "1"',  # a comma inside another tag splits only that tag
        "a" + " " * 900 + 'a, "1"',  # spaces that made the old scan quadratic
    ],
)
async def test_if_match_finds_the_current_version_among_others(client, ann, header):
    resp = await patch_if_match(client, ann, header)
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("header", ['W/"1"', '"1', "1", "a" + " " * 1000 + "a", '"01"'])
async def test_an_if_match_without_the_strong_current_version_is_412(client, ann, header):
    await problem(await patch_if_match(client, ann, header), 412)


@pytest.mark.parametrize("name", ["If-Match", "If-None-Match"])
async def test_a_list_header_over_1_kib_is_a_400_and_changes_nothing(client, ann, name):
    task, etag = await make_task(client, ann.token)
    url, headers = f"{TASKS}/{task['id']}", bearer(ann.token)
    # Spaces inside, not around: the HTTP parser trims a header's ends.
    long = etag + "," + " " * MAX_LIST_HEADER + '"x"'
    method = client.patch if name == "If-Match" else client.get
    kwargs = {"json": {"title": "changed"}} if name == "If-Match" else {}
    body = await problem(await method(url, headers={**headers, name: long}, **kwargs), 400)
    assert name in body["detail"]
    assert body["type"] == "/problems/header-too-large"
    exact = etag + "," + " " * (MAX_LIST_HEADER - len(etag) - 4) + '"x"'
    assert len(exact) == MAX_LIST_HEADER  # at the limit: parsed
    resp = await method(url, headers={**headers, name: exact}, **kwargs)
    assert resp.status == (200 if name == "If-Match" else 304)
    if name == "If-Match":
        assert (await resp.json())["title"] == "changed"


async def test_the_cap_comes_before_any_other_work(client):
    # No token and a path that does not exist: still the 400, not 401 or 404.
    for path in (TASKS, f"{TASKS}/not-a-uuid", "/health"):
        resp = await client.get(path, headers={"If-None-Match": '"1",' * 300})
        body = await problem(resp, 400)
        assert body["type"] == "/problems/header-too-large"
