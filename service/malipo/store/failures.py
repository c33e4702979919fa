"""What a lost, restarting or flapping database can throw at a long-running loop."""

from __future__ import annotations

import asyncpg

# Retried with backoff by every background loop (relay, hub, retention, health watch) rather
# than ending it; a programming error shows up in the log, repeatedly, instead of silence.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
    # asyncpg's protocol state after its socket died under a running statement ("cannot
    # switch to state ..."): not an InterfaceError, and it ended the relay for good when the
    # database restarted (tests/reliability/test_database_restart.py).
    asyncpg.exceptions.InternalClientError,
)
