"""What this process alone knows and the use cases share: provider calls in flight, the
create keys it answered lately and the payments it wrote lately. All are hints for speed; the
database stays the truth."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from malipo.domain.payments import Payment

T = TypeVar("T")


class Submissions:
    """First provider calls of new payments and refunds, each in a task of its own
    (shielded: a caller who hangs up must not leave the call half-recorded). A duplicate
    create in the same process waits on the call's future instead of polling the database;
    shutdown drains the tasks."""

    def __init__(self) -> None:
        self._done: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, payment_id: str, call: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done[payment_id] = done
        task = self.keep(call)
        # Registered before any caller awaits the task: the future is settled before the
        # caller resumes, so a duplicate arriving after the answer reads it from the row.
        task.add_done_callback(lambda _t: self._finish(payment_id, done))
        return task

    def keep(self, call: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `call` in a task that shutdown waits for (no future: nobody waits by id)."""
        task = asyncio.ensure_future(call)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _finish(self, payment_id: str, done: asyncio.Future[None]) -> None:
        self._done.pop(payment_id, None)
        if not done.done():
            done.set_result(None)

    def waiting(self, payment_id: str) -> asyncio.Future[None] | None:
        """The future settled when this payment's first call is recorded, if it is ours."""
        return self._done.get(payment_id)

    async def drain(self, timeout_s: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)


class RecentKeys:
    """Create idempotency keys this process answered lately, (tenant, key), oldest first.

    A client retrying a create usually reaches the same process (a gRPC channel keeps one
    connection), and its replay can then be answered from one read of the key's holder,
    before the validation and the 30-value insert a new payment needs. Only a hint: a key
    evicted, never seen here, purged, or used with another request takes the usual path."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: dict[tuple[str, str], None] = {}  # insertion-ordered set

    def add(self, tenant: str, key: str) -> None:
        self._keys[(tenant, key)] = None
        if len(self._keys) > self._size:
            del self._keys[next(iter(self._keys))]

    def __contains__(self, tenant_key: tuple[str, str]) -> bool:
        return tenant_key in self._keys


class RecentPayments:
    """Payments as this process last wrote them (their row's version included), newest last.

    A provider's callback usually names a payment this process created or updated moments
    ago. Its usual write is guarded by the version it was decided from (store/payments.py
    write_if_unchanged), so deciding on the copy written here, instead of reading the row
    again, is safe: a copy that is no longer the row (another process wrote it, or a write
    here that does not keep this up to date) makes the guarded write change nothing, and the
    caller forgets the copy and reads the row. Only that guarded write may use a copy; every
    answer to a caller reads the database.

    Bounded by an estimate of the copies' memory, not their number: a payment is ~1.2 KB
    with short texts, but its metadata alone may hold 50 values of 512 characters."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        # insertion-ordered, oldest first: each copy and its estimated size
        self._payments: dict[str, tuple[Payment, int]] = {}

    def get(self, payment_id: str) -> Payment | None:
        kept = self._payments.get(payment_id)
        return kept[0] if kept is not None else None

    def wrote(self, payment: Payment) -> None:
        """`payment` is its row now: the fields and the version the write left."""
        self.forget(payment.id)
        size = estimated_bytes(payment)
        if size > self._max_bytes:
            return
        self._payments[payment.id] = (payment, size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            self.forget(next(iter(self._payments)))

    def forget(self, payment_id: str) -> None:
        kept = self._payments.pop(payment_id, None)
        if kept is not None:
            self._bytes -= kept[1]

    @property
    def held_bytes(self) -> int:
        """The kept copies' estimated size, which `max_bytes` bounds."""
        return self._bytes


# A copy with empty texts, measured with tracemalloc (objects, dict, strings, datetimes);
# each text and mapping entry adds its characters and a Python object's overhead.
_COPY_BYTES = 1024
_ENTRY_BYTES = 120
_TEXT_BYTES = 50


def estimated_bytes(payment: Payment) -> int:
    """What keeping `payment` costs, roughly: enough to bound many copies, not one."""
    p = payment
    mappings = [p.metadata, p.provider_fields, p.fulfilment]
    if p.next_action is not None:
        mappings.append(p.next_action.details)
    texts = (p.description, p.provider_message, p.failure_message, p.review_reason,
             p.idempotency_key, p.provider_reference, p.provider_status, p.customer.name,
             p.customer.email, p.customer.reference)
    return (_COPY_BYTES + sum(len(t) + _TEXT_BYTES for t in texts if t)
            + sum(len(k) + len(str(v)) + _ENTRY_BYTES for m in mappings for k, v in m.items()))
