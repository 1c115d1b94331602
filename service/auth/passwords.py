"""bcrypt, without its 72-byte truncation, off the event loop.

bcrypt ignores every byte after the 72nd, so two long passwords sharing a
prefix would both sign in. We never feed it the password itself: it gets
base64(HMAC-SHA256(key=PREHASH_KEY, password)), 44 bytes with no NUL, so
every byte of the password counts and any length works. The fixed HMAC key
only separates this use of SHA-256 from any other; the salt and cost are
bcrypt's. Changing the scheme would need a hash-version prefix and rehash on
sign-in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

import bcrypt

PREHASH_KEY = b"todo-api/password/v1"


def _prehash(password: str) -> bytes:
    digest = hmac.new(PREHASH_KEY, password.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password_sync(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:  # a corrupt stored hash is a failed check, not a crash
        return False


class PasswordHasher:
    """Hashes and checks in a thread pool (bcrypt releases the GIL), so the
    event loop keeps serving while a sign-in burns 200 ms of CPU."""

    def __init__(self, rounds: int, executor: ThreadPoolExecutor) -> None:
        self.rounds = rounds
        self.executor = executor
        # Checked against when the email is unknown, so that path costs the
        # same bcrypt work as a wrong password.
        self.dummy_hash = hash_password_sync("not a real password", rounds)

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, hash_password_sync, password, self.rounds)

    async def check(self, password: str, hashed: str | None) -> bool:
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(
            self.executor, check_password_sync, password, hashed or self.dummy_hash
        )
        return ok and hashed is not None
