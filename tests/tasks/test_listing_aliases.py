"""GET /api/tasks accepts the Hackathon "Evolution of Todo" names (status,
search, sort=created|updated|title|due_date, sort_by, order, sort_order) as exact
aliases of the canonical parameters (shared/API.md, "Listing")."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import TASKS, bearer, make_task, next_link, problem, user_token, walk

# Created in this order; title, created, updated, due and priority orders
# all differ. (title, done?, due_at, priority)
CREATED = [
    ("c", False, "2027-03-01T00:00:00Z", "high"),
    ("a", True, None, "low"),
    ("d", False, "2027-01-01T00:00:00Z", "medium"),
    ("b", True, "2027-02-01T00:00:00Z", "none"),
]
TOUCHED = ["a", "c"]  # patched in this order after all are created
CANONICAL = {
    "created_at": ["c", "a", "d", "b"],
    "-created_at": ["b", "d", "a", "c"],
    "updated_at": ["d", "b", "a", "c"],
    "-updated_at": ["c", "a", "b", "d"],
    "title": ["a", "b", "c", "d"],
    "-title": ["d", "c", "b", "a"],
    "due_at": ["d", "b", "c", "a"],  # a has no due_at: last both ways
    "-due_at": ["c", "b", "d", "a"],
    "priority": ["b", "a", "d", "c"],
    "-priority": ["c", "d", "a", "b"],
}
SORT_BY = {
    "created_at": "created_at",
    "created": "created_at",
    "updated_at": "updated_at",
    "updated": "updated_at",
    "title": "title",
    "due_date": "due_at",
    "due_at": "due_at",
    "priority": "priority",
}
DEFAULT_DESC = {
    "created_at": True,
    "updated_at": True,
    "title": False,
    "due_at": False,
    "priority": True,
}


@pytest.fixture
async def ann(client):
    """Ann's token, with the four CREATED tasks."""
    _, token = await user_token(client)
    ids = {}
    for title, done, due_at, priority in CREATED:
        made = await make_task(
            client, token, title=title, completed=done, due_at=due_at, priority=priority
        )
        ids[title] = made.task["id"]
    for title in TOUCHED:
        resp = await client.patch(
            f"{TASKS}/{ids[title]}", json={"description": "touched"}, headers=bearer(token)
        )
        assert resp.status == 200
    return token


async def titles(client, token: str, query: str, path: str = TASKS) -> list[str]:
    resp = await client.get(f"{path}?{query}", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return [t["title"] for t in await resp.json()]


async def listing_errors(client, token: str, query: str) -> dict:
    """The field errors of the 422 problem the listing answers `query` with."""
    resp = await client.get(f"{TASKS}?{query}", headers=bearer(token))
    return (await problem(resp, 422))["errors"]


def _sort_by_cases() -> list[tuple[str, str]]:
    cases = []
    for value, field in SORT_BY.items():
        default = ("-" if DEFAULT_DESC[field] else "") + field
        cases.append((f"sort_by={value}", default))
        for param in ("order", "sort_order"):
            cases.append((f"sort_by={value}&{param}=asc", field))
            cases.append((f"sort_by={value}&{param}=desc", "-" + field))
    return cases


async def test_the_canonical_orders_and_filters_all_differ(client, ann):
    # The alias tests compare against these; they prove nothing if two agree.
    for sort, expected in CANONICAL.items():
        assert await titles(client, ann, f"sort={sort}") == expected, sort
    assert len({tuple(order) for order in CANONICAL.values()}) == len(CANONICAL)
    assert await titles(client, ann, "completed=true&sort=title") == ["a", "b"]
    assert await titles(client, ann, "completed=false&sort=title") == ["c", "d"]


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("sort=created", "-created_at"),
        ("sort=updated", "-updated_at"),
        ("sort=title", "title"),
        ("sort=created&order=asc", "created_at"),
        ("sort=created&sort_order=desc", "-created_at"),
        ("sort=updated&order=asc", "updated_at"),
        ("sort=updated&sort_order=asc", "updated_at"),
        ("sort=title&order=desc", "-title"),
        ("sort=title&sort_order=desc", "-title"),
        ("sort=title&order=asc", "title"),
        ("sort=due_date", "due_at"),
        ("sort=due_date&order=asc", "due_at"),
        ("sort=due_date&sort_order=desc", "-due_at"),
        ("order=asc", "created_at"),
        ("sort_order=asc", "created_at"),
        ("order=desc", "-created_at"),
        *_sort_by_cases(),
    ],
)
async def test_sort_aliases_give_the_canonical_order(client, ann, query, canonical):
    assert await titles(client, ann, query) == CANONICAL[canonical]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=all", ["a", "b", "c", "d"]),
        ("status=pending", ["c", "d"]),
        ("status=active", ["c", "d"]),
        ("status=completed", ["a", "b"]),
    ],
)
async def test_status_filters(client, ann, query, expected):
    assert await titles(client, ann, f"{query}&sort=title") == expected


async def test_search_is_q(client, ann):
    await make_task(client, ann, title="Buy MILK")
    await make_task(client, ann, title="x", description="the milkman")
    assert await titles(client, ann, "search=milk&sort=title") == ["Buy MILK", "x"]
    assert await titles(client, ann, "search=zzz") == []


async def test_the_hackathon_dashboard_query_answers_200(client, ann):
    # What the Hackathon dashboards send, verbatim.
    assert await titles(client, ann, "status=all&sort_by=created") == CANONICAL["-created_at"]


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("completed=false&status=pending", "completed=false"),
        ("completed=false&status=active", "completed=false"),
        ("completed=true&status=completed", "completed=true"),
        ("q=a&search=a", "q=a"),
        ("sort=-title&order=desc", "sort=-title"),
        ("sort=created_at&sort_order=asc", "sort=created_at"),
        ("sort=title&order=asc", "sort=title"),
        ("sort=title&sort_by=title&order=desc", "sort=-title"),
        ("sort=-updated_at&sort_by=updated", "sort=-updated_at"),
        ("sort=created_at&sort_by=created", "sort=created_at"),
        ("sort=created&sort_by=created_at&order=asc", "sort=created_at"),
        ("sort=due_date&sort_by=due_date&order=desc", "sort=-due_at"),
        ("sort=-priority&sort_by=priority&order=desc", "sort=-priority"),
        ("order=asc&sort_order=asc", "sort=created_at"),
        ("sort_by=title&order=desc&sort_order=desc", "sort=-title"),
    ],
)
async def test_a_parameter_and_its_alias_with_the_same_meaning_are_fine(
    client, ann, query, canonical
):
    expected = await titles(client, ann, canonical)
    assert len(expected) >= 1
    assert await titles(client, ann, query) == expected


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("completed=true&status=pending", {"status"}),
        ("completed=true&status=active", {"status"}),
        ("completed=false&status=completed", {"status"}),
        ("status=all&completed=true", {"status"}),
        ("status=all&completed=false", {"status"}),
        ("q=a&search=b", {"search"}),
        ("q=&search=b", {"search"}),
        ("sort=title&sort_by=created", {"sort_by"}),
        ("sort=-updated_at&sort_by=title", {"sort_by"}),
        ("sort=created&sort_by=updated_at", {"sort_by"}),
        ("sort=-title&order=asc", {"order"}),
        ("sort=created_at&order=desc", {"order"}),
        ("sort=-created_at&sort_order=asc", {"sort_order"}),
        ("sort=updated_at&sort_order=desc", {"sort_order"}),
        ("order=asc&sort_order=desc", {"sort_order"}),
        ("sort_by=title&order=desc&sort_order=asc", {"sort_order"}),
        ("sort=-priority&order=asc", {"order"}),
        ("sort=due_at&sort_order=desc", {"sort_order"}),
        ("sort=due_date&sort_by=priority", {"sort_by"}),
        ("completed=true&status=pending&q=a&search=b", {"status", "search"}),
    ],
)
async def test_a_parameter_and_its_alias_that_contradict_are_422(client, ann, query, fields):
    resp = await client.get(f"{TASKS}?{query}", headers=bearer(ann))
    body = await problem(resp, 422)
    assert set(body["errors"]) == fields, body


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("status=All", "status"),
        ("status=", "status"),
        ("sort=created_on", "sort"),
        ("sort=-created", "sort"),
        ("sort=-due_date", "sort"),
        ("sort=due", "sort"),
        ("sort_by=-priority", "sort_by"),
        ("sort_by=importance", "sort_by"),
        ("sort_by=-title", "sort_by"),
        ("order=up", "order"),
        ("sort_order=ascending", "sort_order"),
    ],
)
async def test_an_unknown_alias_value_is_422(client, ann, query, field):
    errors = await listing_errors(client, ann, query)
    assert list(errors) == [field], errors
    assert errors[field][0].startswith("Must be one of:"), errors


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("search=" + "x" * 201, "search"),
        ("search=a%00b", "search"),
        ("status=all&status=pending", "status"),
        ("sortby=title", "sortby"),
    ],
)
async def test_a_bad_alias_parameter_is_422(client, ann, query, field):
    errors = await listing_errors(client, ann, query)
    assert field in errors, errors


async def test_paging_with_aliases_walks_every_task_once_and_keeps_them(client, ann):
    for i in range(6):
        await make_task(client, ann, title=f"job {i}", completed=i == 2)
    query = "status=pending&sort_by=title&order=desc&search=job&limit=2"
    first = await client.get(f"{TASKS}?{query}", headers=bearer(ann))
    kept = parse_qs(urlsplit(next_link(first)).query)
    assert kept["status"] == ["pending"]
    assert kept["sort_by"] == ["title"]
    assert kept["order"] == ["desc"]
    assert kept["search"] == ["job"]
    assert kept["limit"] == ["2"]
    assert kept["cursor"]

    tasks, pages = await walk(client, ann, query)
    assert [t["title"] for t in tasks] == ["job 5", "job 4", "job 3", "job 1", "job 0"]
    assert len({t["id"] for t in tasks}) == len(tasks)
    assert pages == 3
    assert tasks == (await walk(client, ann, "completed=false&sort=-title&q=job&limit=2")).tasks


async def test_a_cursor_means_the_canonical_listing(client, ann):
    resp = await client.get(f"{TASKS}?status=pending&sort_by=title&limit=1", headers=bearer(ann))
    cursor = parse_qs(urlsplit(next_link(resp)).query)["cursor"][0]
    canonical = f"completed=false&sort=title&limit=1&cursor={cursor}"
    assert await titles(client, ann, canonical) == ["d"]
    assert await titles(client, ann, f"status=active&sort=title&limit=1&cursor={cursor}") == ["d"]
    for other in ("completed=false&sort=-title", "status=all&sort_by=title", "sort=title"):
        resp = await client.get(f"{TASKS}?{other}&limit=1&cursor={cursor}", headers=bearer(ann))
        body = await problem(resp, 422)
        assert "cursor" in body["errors"], (other, body)


async def test_the_user_id_route_accepts_the_aliases(client):
    user_id, token = await user_token(client)
    for title, done, _, _ in CREATED:
        await make_task(client, token, title=title, completed=done)
    path = f"/api/{user_id}/tasks"
    query = "status=pending&sort_by=title&sort_order=desc"
    assert await titles(client, token, query, path) == ["d", "c"]
    assert await titles(client, token, "status=all&sort_by=created", path) == ["b", "d", "a", "c"]
    resp = await client.get(f"{path}?completed=true&status=pending", headers=bearer(token))
    assert set((await problem(resp, 422))["errors"]) == {"status"}
    resp = await client.get(f"{path}?status=pending&limit=1", headers=bearer(token))
    assert urlsplit(next_link(resp)).path == path


async def test_the_document_describes_every_alias(client):
    spec = await (await client.get("/openapi.json")).json()
    for path in ("/api/tasks", "/api/{user_id}/tasks"):
        params = {
            p["name"]: p for p in spec["paths"][path]["get"]["parameters"] if p["in"] == "query"
        }
        for name in ("status", "search", "sort_by", "order", "sort_order"):
            assert "422" in params[name]["description"], (path, name)
        for name in ("status", "search", "sort_by", "sort_order"):
            assert "Alias of" in params[name]["description"], (path, name)
        for name in ("completed", "q", "sort", "limit", "cursor"):
            assert params[name]["description"], (path, name)
        assert params["status"]["schema"]["enum"] == ["all", "pending", "active", "completed"]
        assert params["sort_by"]["schema"]["enum"] == list(SORT_BY)
        assert {"created", "updated", "title"} <= set(params["sort"]["schema"]["enum"])
        sorts = {"due_date", "due_at", "-due_at", "priority", "-priority"}
        assert sorts <= set(params["sort"]["schema"]["enum"])
        assert params["order"]["schema"]["enum"] == ["asc", "desc"]
        assert params["sort_order"]["schema"]["enum"] == ["asc", "desc"]
