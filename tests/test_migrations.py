"""Each migration up, down and up again, one at a time; the commands; and the
database refusing bad rows on its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import shutil
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import psycopg
import pytest
from yoyo import read_migrations

from service.migrations import MigrationLockHeld, migrate, rollback
from service.migrations import backend as yoyo_backend
from tests.conftest import MIGRATIONS_DIR
from tests.launcher import wait_until_async

SNAPSHOT_SQL = """
SELECT 'table ' || c.relname || ' ' || c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname NOT LIKE '\\_yoyo%' AND c.relname NOT LIKE 'yoyo%'
UNION ALL
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '')
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name NOT LIKE '\\_yoyo%' AND table_name NOT LIKE 'yoyo%'
UNION ALL
SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE '%yoyo%'
UNION ALL
SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes
WHERE schemaname = 'public' AND tablename NOT LIKE '\\_yoyo%' AND tablename NOT LIKE 'yoyo%'
UNION ALL
SELECT 'function ' || proname || ' ' || md5(prosrc) FROM pg_proc
WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1
"""


def migrations_up_to(last: str, folder: Path) -> Path:
    """A copy of the migrations with `last` (its number, e.g. "0004") the
    newest: the database as a release before the later ones left it."""
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name[:4] <= last:
            shutil.copy(path, folder)
    return folder


def schema(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(SNAPSHOT_SQL).fetchall()]


def test_each_migration_goes_up_down_and_up_again(empty_database):
    backend = yoyo_backend(empty_database)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    assert len(migrations) >= 2
    try:
        for migration in migrations:
            one = migrations.__class__([migration])
            before = schema(empty_database)
            backend.apply_migrations(backend.to_apply(one))
            after = schema(empty_database)
            assert after != before, f"{migration.id} changed nothing"

            backend.rollback_migrations(backend.to_rollback(one))
            assert schema(empty_database) == before, f"{migration.id} did not roll back cleanly"

            backend.apply_migrations(backend.to_apply(one))
            assert schema(empty_database) == after, f"{migration.id} re-applied differently"
    finally:
        backend.connection.close()


def test_migrate_twice_is_a_no_op_and_rollback_all_leaves_no_tables(empty_database):
    count = len(read_migrations(str(MIGRATIONS_DIR)))
    first = migrate(empty_database, MIGRATIONS_DIR)
    assert len(first) == count
    full = schema(empty_database)
    assert migrate(empty_database, MIGRATIONS_DIR) == []
    assert schema(empty_database) == full

    rolled = rollback(empty_database, MIGRATIONS_DIR, count=count)
    assert rolled == list(reversed(first))
    assert schema(empty_database) == []

    assert migrate(empty_database, MIGRATIONS_DIR) == first
    assert schema(empty_database) == full


def test_rollback_defaults_to_the_newest_one(empty_database):
    applied = migrate(empty_database, MIGRATIONS_DIR)
    assert rollback(empty_database, MIGRATIONS_DIR) == [applied[-1]]
    assert migrate(empty_database, MIGRATIONS_DIR) == [applied[-1]]


def _migrate_in_a_process(url: str, queue) -> None:
    try:
        queue.put(("ok", migrate(url, MIGRATIONS_DIR)))
    except Exception as exc:  # reported to the test
        queue.put(("error", repr(exc)))


def test_several_replicas_may_migrate_at_once(empty_database):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_migrate_in_a_process, args=(empty_database, queue)) for _ in range(3)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(kind == "ok" for kind, _ in results), results
    applied = [ids for _, ids in results if ids]
    # Exactly one replica applied everything; the others found nothing to do.
    assert len(applied) == 1
    assert len(applied[0]) == len(read_migrations(str(MIGRATIONS_DIR)))


# --- the database's own rules, with the application bypassed --------------


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def conn(migrated_database):
    connection = await asyncpg.connect(migrated_database)
    yield connection
    await connection.close()


HASH = "$2b$04$" + "a" * 53


async def make_user(conn, email="ann@example.com", name="Ann") -> str:
    return await conn.fetchval(
        "INSERT INTO users (email, password_hash, name) VALUES ($1, $2, $3) RETURNING id",
        email,
        HASH,
        name,
    )


async def refused_by(conn, query: str, *args) -> str:
    """Run a statement the database must refuse with a CHECK; the constraint's name."""
    with pytest.raises(asyncpg.CheckViolationError) as info:
        await conn.execute(query, *args)
    return info.value.constraint_name


@pytest.mark.parametrize(
    ("title", "description", "constraint"),
    [
        ("", None, "tasks_title_check"),
        ("   \t\n", None, "tasks_title_check"),
        ("x" * 201, None, "tasks_title_check"),
        ("ok", "d" * 2001, "tasks_description_check"),
    ],
)
async def test_the_database_rejects_bad_tasks(conn, title, description, constraint):
    user_id = await make_user(conn)
    query = "INSERT INTO tasks (user_id, title, description) VALUES ($1, $2, $3)"
    assert await refused_by(conn, query, user_id, title, description) == constraint


async def test_the_database_accepts_the_limits(conn):
    user_id = await make_user(conn)
    query = (
        "INSERT INTO tasks (user_id, title, description) VALUES ($1, $2, $3) "
        "RETURNING title, description"
    )
    for title, description in [("x" * 200, "d" * 2000), ("x", None)]:
        stored = await conn.fetchrow(query, user_id, title, description)
        assert (stored["title"], stored["description"]) == (title, description)
    assert await conn.fetchval("SELECT count(*) FROM tasks WHERE user_id = $1", user_id) == 2


# The CHECKs 0017 rewrote into forms PostgreSQL prepares faster, each with
# the form it replaced (0002's, 0010's) and the values that sit at its
# edges: lengths 0, 1, 200 and 201 in letters of one to four bytes, line
# breaks, blank text, case. The live constraint must pass and fail exactly
# what the old form did.
_LONG = [c * n for c in ("x", "é", "🙂") for n in (1, 199, 200, 201)]
_REWRITTEN_CHECKS = {
    "tasks_title_check": (
        "char_length(title) BETWEEN 1 AND 200 AND title ~ '[^[:space:]]'",
        "title text",
        [(v,) for v in ["", " ", "\t\n", "a\nb", "x" * 199 + "\n", *_LONG]],
    ),
    "tasks_priority_check": (
        "priority IN ('none', 'low', 'medium', 'high')",
        "priority text",
        [(v,) for v in ["none", "low", "medium", "high", "High", " none", "", "urgent", None]],
    ),
    "tasks_repeat_check": (
        "repeat IS NULL OR (char_length(repeat) BETWEEN 1 AND 200 AND due_at IS NOT NULL)",
        "repeat text, due_at timestamptz",
        [
            (repeat, due_at)
            for repeat in [None, "", "\n", "a\nb", "r" * 199 + "\n", "r" * 200 + "\n", *_LONG]
            for due_at in [None, datetime(2027, 1, 1, 9, tzinfo=UTC)]
        ],
    ),
}


@pytest.mark.parametrize("name", _REWRITTEN_CHECKS)
async def test_a_rewritten_check_passes_and_fails_what_its_old_form_did(conn, name):
    old, columns, rows = _REWRITTEN_CHECKS[name]
    new = await conn.fetchval(
        "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint "
        "WHERE conrelid = 'tasks'::regclass AND conname = $1",
        name,
    )
    names = [column.split()[0] for column in columns.split(", ")]
    await conn.execute(f"CREATE TEMP TABLE edge ({columns})")
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    await conn.executemany(f"INSERT INTO edge VALUES ({placeholders})", rows)
    # A CHECK passes unless its expression is false; NULL passes.
    verdicts = await conn.fetch(
        f"SELECT {', '.join(names)}, ({old}) IS NOT FALSE AS old, ({new}) IS NOT FALSE AS new "
        "FROM edge"
    )
    assert len(verdicts) == len(rows)
    assert [dict(r) for r in verdicts if r["old"] != r["new"]] == []
    assert {r["old"] for r in verdicts} == {True, False}  # the values reach both sides


async def test_the_database_rejects_a_duplicate_email_in_other_case(conn):
    await make_user(conn, email="Ann@Example.com")
    with pytest.raises(asyncpg.UniqueViolationError) as info:
        await make_user(conn, email="aNN@example.COM")
    assert info.value.constraint_name == "users_password_email_key"


@pytest.mark.parametrize(
    ("email", "name", "password_hash", "constraint"),
    [
        ("ann@example.com", "  ", HASH, "users_name_check"),
        ("ann@example.com", "n" * 101, HASH, "users_name_check"),
        ("no-at-sign", "Ann", HASH, "users_email_check"),
        ("a@" + "b" * 253, "Ann", HASH, "users_email_check"),
        ("ann@example.com", "Ann", "plaintext-password", "users_password_hash_check"),
    ],
)
async def test_the_database_rejects_bad_users(conn, email, name, password_hash, constraint):
    query = "INSERT INTO users (email, password_hash, name) VALUES ($1, $2, $3)"
    assert await refused_by(conn, query, email, password_hash, name) == constraint


async def test_the_trigger_stamps_every_update(conn):
    user_id = await make_user(conn)
    row = await conn.fetchrow(
        "INSERT INTO tasks (user_id, title) VALUES ($1, 'a') "
        "RETURNING id, version, created_at, updated_at",
        user_id,
    )
    async with conn.transaction():
        # Two updates in one transaction still get distinct, later stamps.
        first = await conn.fetchrow(
            "UPDATE tasks SET title = 'b', created_at = created_at - interval '1 day' "
            "WHERE id = $1 RETURNING version, created_at, updated_at",
            row["id"],
        )
        second = await conn.fetchrow(
            "UPDATE tasks SET completed = true WHERE id = $1 "
            "RETURNING version, created_at, updated_at",
            row["id"],
        )
    assert (first["version"], second["version"]) == (2, 3)
    assert first["created_at"] == second["created_at"] == row["created_at"]
    assert row["updated_at"] < first["updated_at"] < second["updated_at"]


async def test_no_tasks_check_or_index_calls_a_sql_function_the_planner_cannot_inline(conn):
    # Every write prepares the CHECKs afresh, and a SQL function's body is
    # then read to find it cannot be inlined: ~110 us a create or patch
    # (migration 0016). Other languages, and SQL functions it inlines, cost
    # nothing there.
    called = await conn.fetch(
        """
        SELECT DISTINCT p.oid::regprocedure::text AS signature, p.proname, l.lanname,
               array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS types
        FROM pg_depend AS d
        JOIN pg_proc AS p ON p.oid = d.refobjid AND d.refclassid = 'pg_proc'::regclass
        JOIN pg_language AS l ON l.oid = p.prolang
        LEFT JOIN pg_constraint AS c ON d.classid = 'pg_constraint'::regclass AND c.oid = d.objid
        LEFT JOIN pg_index AS i ON d.classid = 'pg_class'::regclass AND i.indexrelid = d.objid
        WHERE coalesce(c.conrelid, i.indrelid) = 'tasks'::regclass
        """
    )
    names = {row["proname"] for row in called}
    assert {"tasks_tags_valid", "tasks_tag_keys", "tasks_priority_rank"} <= names, names
    for row in called:
        if row["lanname"] != "sql":  # PL/pgSQL, C: nothing for the planner to read
            continue
        # Called on columns (constants would fold away): inlined, the plan
        # shows its body instead of its name.
        columns = [f"a{n}" for n in range(len(row["types"]))]
        await conn.execute(
            "CREATE TEMP TABLE args ("
            + ", ".join(f"{c} {t}" for c, t in zip(columns, row["types"], strict=True))
            + ")"
        )
        call = f"{row['proname']}({', '.join(columns)})"
        plan = await conn.fetchval(f"EXPLAIN (VERBOSE, FORMAT JSON) SELECT {call} FROM args")
        await conn.execute("DROP TABLE args")
        assert row["proname"] not in plan, (row["signature"], plan)


async def test_deleting_a_user_deletes_their_tasks(conn):
    user_id = await make_user(conn)
    await conn.execute("INSERT INTO tasks (user_id, title) VALUES ($1, 'a')", user_id)
    await conn.execute("DELETE FROM users WHERE id = $1", user_id)
    assert await conn.fetchval("SELECT count(*) FROM tasks WHERE user_id = $1", user_id) == 0


# --- 0004: accounts linked to Better Auth ----------------------------------

ISSUER = "http://localhost:3000"


async def make_linked(conn, subject="ba-user-1", email="ann@example.com") -> str:
    return await conn.fetchval(
        "INSERT INTO users (auth_issuer, auth_subject, email, name) "
        "VALUES ($1, $2, $3, 'Ann') RETURNING id",
        ISSUER,
        subject,
        email,
    )


@pytest.mark.parametrize(
    ("columns", "values", "constraint"),
    [
        # Neither a password nor a link.
        ("email, name", ("a@example.com", "A"), "users_credentials_check"),
        # Both a password and a link.
        (
            "email, name, password_hash, auth_issuer, auth_subject",
            ("a@example.com", "A", HASH, ISSUER, "s"),
            "users_credentials_check",
        ),
        # A password account needs an email.
        ("name, password_hash", ("A", HASH), "users_credentials_check"),
        # Half a link.
        ("name, auth_subject", ("A", "s"), "users_credentials_check"),
        ("name, auth_issuer, auth_subject", ("A", ISSUER, ""), "users_auth_subject_check"),
        ("name, auth_issuer, auth_subject", ("A", ISSUER, "s" * 256), "users_auth_subject_check"),
        ("name, auth_issuer, auth_subject", ("A", "", "s"), "users_auth_issuer_check"),
        # The bcrypt check still guards a stored hash.
        ("email, name, password_hash", ("a@example.com", "A", "x"), "users_password_hash_check"),
    ],
)
async def test_every_account_is_exactly_one_kind(conn, columns, values, constraint):
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    query = f"INSERT INTO users ({columns}) VALUES ({placeholders})"
    assert await refused_by(conn, query, *values) == constraint


async def test_a_linked_account_needs_no_email_and_is_unique_per_issuer_and_subject(conn):
    await conn.execute(
        "INSERT INTO users (auth_issuer, auth_subject, name) VALUES ($1, 's', 'A')", ISSUER
    )
    with pytest.raises(asyncpg.UniqueViolationError) as info:
        await conn.execute(
            "INSERT INTO users (auth_issuer, auth_subject, name) VALUES ($1, 's', 'B')", ISSUER
        )
    assert info.value.constraint_name == "users_auth_identity_key"
    # The same subject of another issuer is another person.
    await conn.execute(
        "INSERT INTO users (auth_issuer, auth_subject, name) VALUES ('https://x.example', 's', 'C')"
    )


async def test_an_email_is_unique_among_password_accounts_only(conn):
    await make_user(conn, email="Ann@Example.com")
    await make_linked(conn, "one", email="ann@example.com")
    await make_linked(conn, "two", email="ANN@example.com")
    assert await conn.fetchval("SELECT count(*) FROM users") == 3


async def test_two_first_requests_at_once_link_one_account(migrated_database):
    """Forces the race: the first insert is held open until the second
    request is waiting on it; both must get the one account."""
    sql = (MIGRATIONS_DIR.parent / "queries" / "auth" / "link_better_auth_user.sql").read_text()
    first = await asyncpg.connect(migrated_database)
    second = await asyncpg.connect(migrated_database)
    try:
        args = (ISSUER, "racer", "r@example.com", "Racer", int(time.time()), bytes(32))
        transaction = first.transaction()
        await transaction.start()
        first_id = await first.fetchval(sql, *args)
        waiting = asyncio.ensure_future(second.fetchval(sql, *args))
        await _until_blocked(first, second)
        await transaction.commit()
        assert await waiting == first_id
        assert await first.fetchval(sql, *args) == first_id  # and found, later
        count = await first.fetchval("SELECT count(*) FROM users WHERE auth_subject = 'racer'")
        assert count == 1
    finally:
        await first.close()
        await second.close()


async def test_ending_a_better_auth_token_cleans_up_to_ten_long_expired_ones(conn):
    sql = (MIGRATIONS_DIR.parent / "queries" / "auth" / "end_better_auth_token.sql").read_text()
    insert = "INSERT INTO better_auth_ended_tokens VALUES ($1, now() + $2::text::interval)"
    for i in range(15):
        await conn.execute(insert, bytes([i]) * 32, "-2 minutes")
    # Expired, but within the verifier's leeway on `exp`; and not expired.
    await conn.execute(insert, bytes([100]) * 32, "-10 seconds")
    await conn.execute(insert, bytes([101]) * 32, "1 hour")

    count_long_expired = (
        "SELECT count(*) FROM better_auth_ended_tokens "
        "WHERE expires_at < now() - interval '1 minute'"
    )
    new = bytes([200]) * 32
    await conn.execute(sql, new, int(time.time()) + 900)
    assert await conn.fetchval(count_long_expired) == 5
    await conn.execute(sql, new, int(time.time()) + 900)  # the same token again: one row
    assert await conn.fetchval(count_long_expired) == 0
    left = await conn.fetch("SELECT token_digest FROM better_auth_ended_tokens")
    assert {row["token_digest"] for row in left} == {bytes([100]) * 32, bytes([101]) * 32, new}


async def test_an_ended_token_is_named_by_a_sha256_digest(conn):
    insert = "INSERT INTO better_auth_ended_tokens VALUES ($1, now())"
    constraint = await refused_by(conn, insert, b"short digest")
    assert constraint == "better_auth_ended_tokens_token_digest_check"


async def _until_blocked(observer, blocked) -> None:
    """Return once `blocked`'s backend waits for a lock."""
    pid = blocked.get_server_pid()

    async def waits() -> bool:
        return bool(
            await observer.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
            )
        )

    # pg_stat_activity has no notification: poll it.
    await wait_until_async(waits, "the second insert never waited for the first", within=10)


async def test_rolling_0004_back_deletes_linked_accounts_only(empty_database, tmp_path):
    up_to_0004 = migrations_up_to("0004", tmp_path)
    applied = migrate(empty_database, up_to_0004)
    assert applied[-1] == "0004.link_better_auth_accounts"
    async with connected(empty_database) as conn:
        ann = await make_user(conn)
        linked = await make_linked(conn, email="ann@example.com")
        for owner in (ann, linked):
            await conn.execute("INSERT INTO tasks (user_id, title) VALUES ($1, 't')", owner)

    rollback(empty_database, up_to_0004)
    async with connected(empty_database) as conn:
        assert await conn.fetchval("SELECT array_agg(id) FROM users") == [ann]
        assert await conn.fetchval("SELECT array_agg(DISTINCT user_id) FROM tasks") == [ann]
        with pytest.raises(asyncpg.UniqueViolationError) as info:
            await make_user(conn, email="ANN@example.com")
        assert info.value.constraint_name == "users_email_lower_key"
    assert migrate(empty_database, up_to_0004) == ["0004.link_better_auth_accounts"]


# --- 0005: each account's task count ------------------------------------------


async def test_0005_counts_the_tasks_already_there_and_rolls_back(empty_database, tmp_path):
    up_to_0004 = migrations_up_to("0004", tmp_path)
    migrate(empty_database, up_to_0004)
    async with connected(empty_database) as conn:
        ann, bob = await make_user(conn), await make_user(conn, email="bob@example.com")
        await make_linked(conn)  # no tasks: gets its counters at its first create
        await conn.execute(
            "INSERT INTO tasks (user_id, title) SELECT $1, 't' || g FROM generate_series(1, 130) g",
            ann,
        )
        await conn.execute("INSERT INTO tasks (user_id, title) VALUES ($1, 'b')", bob)
        before = schema(empty_database)

        up_to_0005 = migrations_up_to("0005", up_to_0004)
        assert migrate(empty_database, up_to_0005) == ["0005.count_tasks_per_user"]
        rows = await conn.fetch(
            "SELECT user_id, array_agg(task_total ORDER BY stripe) AS stripes "
            "FROM task_counts GROUP BY user_id"
        )
        stripes = {row["user_id"]: row["stripes"] for row in rows}
        # 130 = 64 x 2 + 2: the first two stripes count one more; bob's one
        # task makes one row (none at 0).
        assert stripes == {ann: [3, 3] + [2] * 62, bob: [1]}
        update = "UPDATE task_counts SET task_total = -1 WHERE user_id = $1"
        assert await refused_by(conn, update, bob) == "task_counts_task_total_check"

        assert rollback(empty_database, up_to_0005) == ["0005.count_tasks_per_user"]
        assert schema(empty_database) == before
        assert await conn.fetchval("SELECT count(*) FROM tasks") == 131


# --- 0020: one task counter per account ---------------------------------------


async def set_stripes(conn, user_id: str, stripes: dict[int, int]) -> None:
    """The counters as the previous release left them: spread over stripes."""
    await conn.execute("DELETE FROM task_counts WHERE user_id = $1", user_id)
    await conn.executemany(
        "INSERT INTO task_counts (user_id, stripe, task_total) VALUES ($1, $2, $3)",
        [(user_id, stripe, total) for stripe, total in stripes.items()],
    )


async def totals(conn) -> dict[str, int]:
    return dict(await conn.fetch("SELECT user_id, task_total FROM task_totals"))


async def stripe_sums(conn) -> dict[str, int]:
    return dict(
        await conn.fetch("SELECT user_id, sum(task_total)::int FROM task_counts GROUP BY user_id")
    )


async def test_0020_carries_the_stripes_over_to_one_counter_and_back(empty_database, tmp_path):
    up_to_0019 = migrations_up_to("0019", tmp_path)
    migrate(empty_database, up_to_0019)
    async with connected(empty_database) as conn:
        ann, bob = await make_user(conn), await make_user(conn, email="bob@example.com")
        linked = await make_linked(conn)  # no tasks: no stripe
        for owner, count in ((ann, 130), (bob, 3)):
            await conn.execute(
                "INSERT INTO tasks (user_id, title) "
                "SELECT $1, 't' || g FROM generate_series(1, $2::int) AS g",
                owner,
                count,
            )
        # Counted on whichever connections the creates ran on.
        await set_stripes(conn, ann, {0: 61, 17: 40, 42: 28, 63: 1})
        await set_stripes(conn, bob, {5: 2, 6: 1})
        before = schema(empty_database)

        up_to_0020 = migrations_up_to("0020", up_to_0019)
        assert migrate(empty_database, up_to_0020) == ["0020.one_task_counter_per_account"]
        assert await totals(conn) == {ann: 130, bob: 3, linked: 0}
        # Kept for the previous release, whose statements write it until
        # the new one serves; stale from now on.
        await set_stripes(conn, bob, {5: 3})
        await conn.execute("INSERT INTO tasks (user_id, title) VALUES ($1, 'after')", linked)
        assert await totals(conn) == {ann: 130, bob: 3, linked: 1}
        carol = await make_user(conn, email="carol@example.com")  # counted from the start
        assert (await totals(conn))[carol] == 0
        await conn.execute("DELETE FROM users WHERE id = $1", carol)  # and gone with it
        update = "UPDATE task_totals SET task_total = -1 WHERE user_id = $1"
        assert await refused_by(conn, update, bob) == "task_totals_task_total_check"

        assert rollback(empty_database, up_to_0020) == ["0020.one_task_counter_per_account"]
        assert schema(empty_database) == before
        assert await stripe_sums(conn) == {ann: 130, bob: 3, linked: 1}
        # Spread as 0005 spread a count: 130 = 64 x 2 + 2, the first two one more.
        ann_stripes = await conn.fetchval(
            "SELECT array_agg(task_total ORDER BY stripe) FROM task_counts WHERE user_id = $1",
            ann,
        )
        assert ann_stripes == [3, 3] + [2] * 62

        assert migrate(empty_database, up_to_0020) == ["0020.one_task_counter_per_account"]
        assert await totals(conn) == {ann: 130, bob: 3, linked: 1}


async def test_0020_counts_the_tasks_themselves_not_what_the_stripes_missed(
    empty_database, tmp_path
):
    migrate(empty_database, migrations_up_to("0019", tmp_path))
    async with connected(empty_database) as conn:
        ann = await make_user(conn)
        # A DBA's import the previous release never counted (no stripe).
        await conn.execute(
            "INSERT INTO tasks (user_id, title) SELECT $1, 'imported' FROM generate_series(1, 4)",
            ann,
        )
        assert await stripe_sums(conn) == {}
        migrate(empty_database, migrations_up_to("0020", tmp_path))
        assert await totals(conn) == {ann: 4}


async def test_0020_counts_a_task_written_while_it_runs(empty_database, tmp_path):
    migrate(empty_database, migrations_up_to("0019", tmp_path))
    holder, writer, observer = [await asyncpg.connect(empty_database) for _ in range(3)]
    try:
        ann = await make_user(holder)
        await holder.execute("INSERT INTO tasks (user_id, title) VALUES ($1, 'before')", ann)
        await set_stripes(holder, ann, {9: 1})

        async def waiting(count: int) -> None:
            async def enough() -> bool:
                return count <= await observer.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )

            await wait_until_async(enough, f"{count} backends never waited for a lock", 10)

        # The holder keeps the migration at its users lock, after it has
        # locked tasks; a DBA's insert then waits for the migration.
        async with holder.transaction():
            await holder.execute("UPDATE users SET name = 'Held' WHERE id = $1", ann)
            migrating = asyncio.create_task(
                asyncio.to_thread(migrate, empty_database, migrations_up_to("0020", tmp_path))
            )
            await waiting(1)
            inserting = asyncio.create_task(
                writer.execute("INSERT INTO tasks (user_id, title) VALUES ($1, 'during')", ann)
            )
            await waiting(2)
        assert await migrating == ["0020.one_task_counter_per_account"]
        await inserting
        assert await totals(observer) == {ann: 2}
    finally:
        for c in (holder, writer, observer):
            await c.close()


# --- the migration lock -------------------------------------------------------


def hold_lock(url: str, pid: int = 999_999) -> None:
    """A lock row as a migrate that was killed mid-way leaves it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), %s)", (pid,))


def test_a_stale_lock_names_its_holder_and_the_way_out(migrated_database, caplog):
    hold_lock(migrated_database)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="service.migrations"),
            pytest.raises(MigrationLockHeld, match="process 999999 since") as info,
        ):
            migrate(migrated_database, MIGRATIONS_DIR, lock_timeout=0.2)
        assert "todo-api migrate --break-lock" in str(info.value)
        assert "held by process 999999" in caplog.text  # said at once, not after the wait
    finally:
        with psycopg.connect(migrated_database, autocommit=True) as conn:
            conn.execute("DELETE FROM yoyo_lock")


def test_break_lock_clears_a_stale_lock_and_migrates(empty_database):
    newest = migrate(empty_database, MIGRATIONS_DIR)[-1]
    rollback(empty_database, MIGRATIONS_DIR)
    hold_lock(empty_database)
    assert migrate(empty_database, MIGRATIONS_DIR, break_lock=True) == [newest]
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM yoyo_lock").fetchone()[0] == 0


# --- 0009: one password account per mailbox, in any Unicode form ---------------


async def test_0009_sets_colliding_accounts_aside_and_says_which_kept_the_address(
    empty_database, tmp_path
):
    up_to_0008 = migrations_up_to("0008", tmp_path)
    migrate(empty_database, up_to_0008)
    async with connected(empty_database) as conn:
        # Distinct under 0004's lower(email), one address under 0009's rule.
        first = await make_user(conn, email="jos\u00e9@example.com")  # composed
        second = await make_user(conn, email="JOSE\u0301@example.com")  # decomposed
        third = await make_user(conn, email="\uff4a\uff4f\uff53\u00e9@example.com")  # fullwidth
        other = await make_user(conn, email="ann@example.com")
        linked = await make_linked(conn, email="jos\u00e9@example.com")  # never counted
        for owner in (second, third):
            await conn.execute("INSERT INTO tasks (user_id, title) VALUES ($1, 't')", owner)
        before = schema(empty_database)

        up_to_0009 = migrations_up_to("0009", up_to_0008)
        assert migrate(empty_database, up_to_0009) == ["0009.unique_email_in_any_unicode_form"]
        marks = dict(await conn.fetch("SELECT id, email_duplicate_of FROM users"))
        assert marks == {first: None, second: first, third: first, other: None, linked: None}
        assert await conn.fetchval("SELECT count(*) FROM tasks") == 2  # nothing deleted
        signin = (
            MIGRATIONS_DIR.parent / "queries" / "auth" / "get_user_for_signin.sql"
        ).read_text()
        for form in (
            "JOS\u00c9@example.com",
            "jose\u0301@EXAMPLE.com",
            "\uff2a\uff2f\uff33\u00c9@example.com",
        ):
            assert (await conn.fetchrow(signin, form))["id"] == first
        with pytest.raises(asyncpg.UniqueViolationError) as info:
            await make_user(conn, email="Jos\u00c9@example.com")
        assert info.value.constraint_name == "users_password_email_key"

        assert rollback(empty_database, up_to_0009) == ["0009.unique_email_in_any_unicode_form"]
        assert schema(empty_database) == before
        assert await conn.fetchval("SELECT count(*) FROM users") == 5


# --- 0024: the change feed -----------------------------------------------------


async def test_0024_keeps_existing_tasks_and_stamps_every_later_write(empty_database, tmp_path):
    up_to_0023 = migrations_up_to("0023", tmp_path)
    migrate(empty_database, up_to_0023)
    async with connected(empty_database) as conn:
        ann = await make_user(conn)
        old = await conn.fetchval(
            "INSERT INTO tasks (user_id, title) VALUES ($1, 'old') RETURNING id", ann
        )
        before = schema(empty_database)
        assert migrate(empty_database, migrations_up_to("0024", up_to_0023)) == [
            "0024.add_task_change_feed"
        ]
        # Written before the feed: '0', below every token's floor.
        assert await conn.fetchval("SELECT change_xid::text FROM tasks WHERE id = $1", old) == "0"
        async with conn.transaction():
            xid = await conn.fetchval("SELECT pg_current_xact_id()::text")
            new = await conn.fetchval(
                "INSERT INTO tasks (user_id, title) VALUES ($1, 'new') RETURNING id", ann
            )
            # The trigger's stamp, whatever the statement sets.
            await conn.execute("UPDATE tasks SET change_xid = '1', title = 'x' WHERE id = $1", old)
        stamps = await conn.fetch("SELECT id, change_xid::text AS xid FROM tasks")
        assert {row["id"]: row["xid"] for row in stamps} == {old: xid, new: xid}

        assert rollback(empty_database, migrations_up_to("0024", up_to_0023)) == [
            "0024.add_task_change_feed"
        ]
        assert schema(empty_database) == before
        assert await conn.fetchval("SELECT count(*) FROM tasks") == 2
