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

# The database connection went away (terminated backend, restart, network): nothing was
# committed by the failed statement, so the same request with the same key may be retried
# (the gRPC edge answers UNAVAILABLE).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.InterfaceError,  # includes ConnectionDoesNotExistError
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    # asyncpg's protocol state after its socket died under a running statement
    # ("cannot switch to state ..."): that connection is unusable, the request is retryable.
    asyncpg.exceptions.InternalClientError,
    OSError,
)
