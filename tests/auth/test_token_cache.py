"""The verified-token cache (service.auth.tokens): a token checked once is
served from it, but only until its `exp` plus the leeway; past that it is
refused like any expired token, cached or not."""

from __future__ import annotations

import jwt
import time_machine

from service.auth.tokens import LEEWAY_SECONDS
from tests.helpers import TASKS, bearer, problem, user_token


async def test_a_cached_token_is_refused_once_past_its_expiry(client):
    ann = await user_token(client)
    assert (await client.get(TASKS, headers=bearer(ann.token))).status == 200  # now cached
    expires = jwt.decode(ann.token, options={"verify_signature": False})["exp"]

    # time.time() and datetime move; the event loop's monotonic clock does not.
    with time_machine.travel(expires + LEEWAY_SECONDS - 2, tick=False):
        assert (await client.get(TASKS, headers=bearer(ann.token))).status == 200
    with time_machine.travel(expires + LEEWAY_SECONDS + 1, tick=False):
        body = await problem(await client.get(TASKS, headers=bearer(ann.token)), 401)
        assert "expired" in body["detail"]
        # Refused again: it left the cache, it does not come back.
        await problem(await client.get(TASKS, headers=bearer(ann.token)), 401)
