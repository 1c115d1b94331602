from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import TASKS, bearer, make_task, next_link, problem, user_token, walk

SORTS = ["-created_at", "created_at", "-updated_at", "updated_at", "-title", "title"]


@pytest.fixture
async def ann(client):
    return await user_token(client)


@pytest.fixture
def search(client, ann):
    """The titles of ann's tasks a search `q` finds, A to Z."""

    async def titles(q: str) -> list[str]:
        resp = await client.get(TASKS, params={"q": q, "sort": "title"}, headers=bearer(ann.token))
        assert resp.status == 200, await resp.text()
        return [t["title"] for t in await resp.json()]

    return titles


async def test_an_empty_list_is_an_empty_array(client, ann):
    resp = await client.get(TASKS, headers=bearer(ann.token))
    assert resp.status == 200
    assert await resp.json() == []
    assert "Link" not in resp.headers


async def test_the_default_order_is_newest_first(client, ann):
    for i in range(3):
        await make_task(client, ann.token, title=f"t{i}")
    resp = await client.get(TASKS, headers=bearer(ann.token))
    assert [t["title"] for t in await resp.json()] == ["t2", "t1", "t0"]


@pytest.mark.parametrize("sort", SORTS)
async def test_walking_30_tasks_7_at_a_time_returns_each_once_in_order(client, ann, sort):
    token = ann.token
    # Titles with ties and mixed case, so the id tie-break and collation matter.
    titles = [["apple", "Banana", "cherry", "Apple", "banana"][i % 5] for i in range(30)]
    created = [(await make_task(client, token, title=t)).task for t in titles]
    # Touch a few so that updated_at order differs from created_at order.
    for task in created[::4]:
        await client.patch(
            f"{TASKS}/{task['id']}", json={"description": "x"}, headers=bearer(token)
        )

    tasks, pages = await walk(client, token, f"sort={sort}&limit=7")
    ids = [t["id"] for t in tasks]
    assert len(ids) == 30
    assert set(ids) == {t["id"] for t in created}
    assert pages == 5

    everything = await (
        await client.get(f"{TASKS}?sort={sort}&limit=100", headers=bearer(token))
    ).json()
    assert [t["id"] for t in everything] == ids  # paging does not change the order
    field = sort.lstrip("-")
    if field != "title":
        keys = [(t[field], t["id"]) for t in tasks]
        assert keys == sorted(keys, reverse=sort.startswith("-"))


async def test_titles_sort_the_way_people_read_them(client, ann):
    for title in ["zebra", "Banana", "ärger", "apple", "Apple"]:
        await make_task(client, ann.token, title=title)
    resp = await client.get(f"{TASKS}?sort=title", headers=bearer(ann.token))
    titles = [t["title"] for t in await resp.json()]
    assert titles == ["apple", "Apple", "ärger", "Banana", "zebra"]
    resp = await client.get(f"{TASKS}?sort=-title", headers=bearer(ann.token))
    assert [t["title"] for t in await resp.json()] == list(reversed(titles))


async def test_filter_by_completed(client, ann):
    await make_task(client, ann.token, title="open")
    await make_task(client, ann.token, title="done", completed=True)
    for value, expected in (("true", ["done"]), ("false", ["open"])):
        resp = await client.get(f"{TASKS}?completed={value}", headers=bearer(ann.token))
        assert [t["title"] for t in await resp.json()] == expected


async def test_search_is_case_insensitive_over_title_and_description(client, ann):
    await make_task(client, ann.token, title="Buy MILK")
    await make_task(client, ann.token, title="Call mum", description="about the milkman")
    await make_task(client, ann.token, title="Ärger", description=None)
    await make_task(client, ann.token, title="unrelated")
    resp = await client.get(f"{TASKS}?q=milk&sort=title", headers=bearer(ann.token))
    assert [t["title"] for t in await resp.json()] == ["Buy MILK", "Call mum"]
    resp = await client.get(f"{TASKS}?q=%C3%A4RGER", headers=bearer(ann.token))  # "äRGER"
    assert [t["title"] for t in await resp.json()] == ["Ärger"]


async def test_search_text_is_never_a_pattern(client, ann, search):
    for title in ["100% done", "100 percent", "snake_case", "snakeXcase", "back\\slash"]:
        await make_task(client, ann.token, title=title)

    assert await search("0%") == ["100% done"]
    assert await search("%") == ["100% done"]
    assert await search("e_c") == ["snake_case"]
    assert await search("_") == ["snake_case"]
    assert await search("\\") == ["back\\slash"]
    assert await search("*") == []


async def test_filters_and_paging_combine(client, ann):
    for i in range(12):
        await make_task(client, ann.token, title=f"milk {i}", completed=i % 2 == 0)
    await make_task(client, ann.token, title="other", completed=True)
    tasks, pages = await walk(client, ann.token, "completed=true&q=milk&limit=4&sort=title")
    assert len(tasks) == 6
    assert pages == 2
    assert all(t["completed"] and "milk" in t["title"] for t in tasks)


async def test_the_next_link_keeps_the_query(client, ann):
    for i in range(3):
        await make_task(client, ann.token, title=f"t{i}")
    resp = await client.get(f"{TASKS}?limit=2&sort=title&q=t", headers=bearer(ann.token))
    query = parse_qs(urlsplit(next_link(resp)).query)
    assert query["limit"] == ["2"]
    assert query["sort"] == ["title"]
    assert query["q"] == ["t"]
    assert query["cursor"]


async def test_limit_defaults_to_50(client, ann):
    for i in range(51):
        await make_task(client, ann.token, title=f"t{i}")
    resp = await client.get(TASKS, headers=bearer(ann.token))
    assert len(await resp.json()) == 50
    assert next_link(resp)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=priorities", "sort"),
        ("sort=", "sort"),
        ("sort=id", "sort"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("completed=yes", "completed"),
        ("completed=1", "completed"),
        ("completed=True", "completed"),
        ("q=" + "x" * 201, "q"),
        ("q=a%00b", "q"),
        ("cursor=forged", "cursor"),
        ("cursor=eyJhIjoxfQ.AAAA", "cursor"),
        ("page=2", "page"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_a_bad_parameter_is_422(client, ann, query, field):
    resp = await client.get(f"{TASKS}?{query}", headers=bearer(ann.token))
    body = await problem(resp, 422)
    assert field in body["errors"], body


async def test_a_cursor_cannot_be_edited_moved_or_reused_with_other_filters(client, ann):
    for i in range(3):
        await make_task(client, ann.token, title=f"t{i}")
    resp = await client.get(f"{TASKS}?limit=1", headers=bearer(ann.token))
    cursor = parse_qs(urlsplit(next_link(resp)).query)["cursor"][0]
    payload, mac = cursor.split(".")

    async def status(query: str, token: str = ann.token) -> int:
        return (await client.get(f"{TASKS}?{query}", headers=bearer(token))).status

    assert await status(f"limit=1&cursor={cursor}") == 200
    assert await status(f"limit=5&cursor={cursor}") == 200  # page size may change
    tampered = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    assert await status(f"limit=1&cursor={tampered}.{mac}") == 422
    assert await status(f"limit=1&sort=title&cursor={cursor}") == 422
    assert await status(f"limit=1&completed=false&cursor={cursor}") == 422
    assert await status(f"limit=1&q=t&cursor={cursor}") == 422
    _, bob = await user_token(client, "bob@example.com")
    assert await status(f"limit=1&cursor={cursor}", bob) == 422


async def test_the_next_link_uses_public_url_when_set(aiohttp_client, migrated_database):
    from service.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(DATABASE_URL=migrated_database, PUBLIC_URL="https://api.example.com/")
    client = await aiohttp_client(create_app(settings))
    _, token = await user_token(client)
    for i in range(2):
        await make_task(client, token, title=f"t{i}")
    resp = await client.get(f"{TASKS}?limit=1&q=t", headers=bearer(token))
    link = next_link(resp)
    assert link.startswith("https://api.example.com/api/tasks?")
    assert parse_qs(urlsplit(link).query)["q"] == ["t"]


# --- q through the trigram index (3 letters or digits in a row) and without -------


@pytest.mark.parametrize("sort", SORTS)
async def test_a_search_walked_2_at_a_time_returns_each_match_once_in_order(client, ann, sort):
    bob = await user_token(client, email="bob@example.com")
    matches = []
    for i in range(9):
        title = ["Buy MILK", "milkshake", "Oat milk", "MiLk run"][i % 4]
        matches.append((await make_task(client, ann.token, title=f"{title} {i}")).task["id"])
        await make_task(client, ann.token, title=f"bread {i}")
        await make_task(client, bob.token, title=f"milk of bob {i}")  # never ann's
    matches.append(
        (await make_task(client, ann.token, title="note", description="ask about MILK")).task["id"]
    )
    tasks, pages = await walk(client, ann.token, f"q=milk&sort={sort}&limit=2")
    assert sorted(t["id"] for t in tasks) == sorted(matches)
    assert pages == 5
    everything = await (
        await client.get(f"{TASKS}?q=milk&sort={sort}&limit=100", headers=bearer(ann.token))
    ).json()
    assert [t["id"] for t in everything] == [t["id"] for t in tasks]  # the order, paged or not


async def test_searches_through_either_statement_find_the_same(client, ann, search):
    for title, description in [
        ("100% done", None),
        ("snake_case", "back\\slash"),
        ("snakeXcase", None),
        ("École", "ÜBER straße"),
        ("σοφία", "Ärger"),
        ("Buy milk", "2 litres"),
    ]:
        await make_task(client, ann.token, title=title, description=description)

    # Through the trigram index: each has 3 letters or digits in a row.
    assert await search("100%") == ["100% done"]
    assert await search("00% d") == ["100% done"]
    assert await search("ake_c") == ["snake_case"]
    assert await search("ck\\sla") == ["snake_case"]
    assert await search("ÉCOLE") == ["École"]
    assert await search("über STR") == ["École"]
    assert await search("ΣΟΦΊΑ") == ["σοφία"]
    assert await search("ärg") == ["σοφία"]
    assert await search("milk") == ["Buy milk"]
    assert await search("zebra") == []
    # Without: one or two characters, or no three in a row.
    assert await search("k") == ["Buy milk", "snake_case", "snakeXcase"]
    assert await search("% ") == ["100% done"]
    assert await search("e_") == ["snake_case"]
    assert await search("\\s") == ["snake_case"]
    assert await search("ß") == ["École"]
    assert await search("ab") == []


# Every character a description may hold but NUL, quotes, a backslash, and
# what a browser or a terminal might mistake for markup or a line break.
_EVERY_ESCAPE = "".join(map(chr, range(1, 0x20))) + '\x7f\x80\x9f\u2028\u2029"\\/'
_EDGES = [
    {"title": "only a title"},
    {
        "title": 'a "quoted" \\ title </script> é 😀 中文',
        "description": _EVERY_ESCAPE + " <b>é</b> 😀",
        "priority": "high",
        "due_at": "0002-01-01T00:00:00Z",
        "remind_at": "2026-12-07T10:30:00.120000+05:30",
        "tags": ["wörk", "🏠 home", 'a "tag"'],
    },
    {"title": "latest due", "description": "", "due_at": "9998-12-31T23:59:59.999999Z"},
    {"title": "weekly", "due_at": "2027-01-04T09:00:00.5Z", "repeat": "FREQ=WEEKLY;BYDAY=MO"},
    {"title": "done", "completed": True, "priority": "low", "tags": ["x"]},
]


async def test_a_listed_task_is_byte_for_byte_the_task_read_alone(client, ann):
    # A listing is rendered by PostgreSQL (list_tasks.sql, api_timestamp()),
    # a task read alone by the service (task_json and orjson): the same bytes,
    # over every field, null and set, and the edges of each.
    for fields in _EDGES:
        await make_task(client, ann.token, **fields)
    listed = await client.get(TASKS, params={"sort": "created_at"}, headers=bearer(ann.token))
    assert listed.status == 200
    body = await listed.read()
    alone = []
    for task in await listed.json():
        resp = await client.get(f"{TASKS}/{task['id']}", headers=bearer(ann.token))
        assert resp.headers["Content-Type"] == listed.headers["Content-Type"]
        alone.append(await resp.read())
    assert body == b"[" + b",".join(alone) + b"]"
    tasks = [json.loads(one) for one in alone]
    assert [t["title"] for t in tasks] == [e["title"] for e in _EDGES]
    assert tasks[1]["description"].startswith(_EVERY_ESCAPE)
    assert tasks[1]["remind_at"] == "2026-12-07T05:00:00.120000Z"
    assert tasks[2]["due_at"] == "9998-12-31T23:59:59.999999Z"
    assert tasks[4]["completed_at"] is not None


@pytest.mark.parametrize("sort", ["due_at", "-due_at", "priority", "-priority", "title"])
async def test_cursors_from_rendered_rows_walk_every_sort_one_at_a_time(client, ann, sort):
    # The cursor is read back from the last task's JSON: a timestamp with all
    # its microseconds, a text as it is, a missing due_at as null.
    for fields in _EDGES:
        await make_task(client, ann.token, **fields)
    whole = await client.get(TASKS, params={"sort": sort}, headers=bearer(ann.token))
    walked, pages = await walk(client, ann.token, f"sort={sort}&limit=1")
    assert [t["id"] for t in walked] == [t["id"] for t in await whole.json()]
    assert pages == len(_EDGES)
