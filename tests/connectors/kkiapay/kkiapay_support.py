"""Shared helpers for the KKiaPay connector tests (a uniquely named module: rootdir imports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from malipo.app.connector import CallbackEvent, CallbackOutcome, InboundCallback, ProviderAccount
from malipo.connectors.kkiapay import KkiapayConnector
from malipo.domain.errors import CallbackRejected
from malipo.domain.ids import new_payment_id, new_payout_id
from malipo.domain.money import Money
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Method, Status
from malipo.sandbox.kkiapay import KkiapayFake

KEYS = {"public_key": "pk_live_fake_123", "private_key": "tpk_private_456",
        "secret_key": "tsk_secret_789"}
WEBHOOK_SECRET = "hash-secret-from-dashboard"


def account_for(fake: KkiapayFake, **extra: str) -> ProviderAccount:
    settings = {**KEYS, "base_url": fake.base_url, "sandbox": "true",
                "webhook_secret": WEBHOOK_SECRET, "timeout_s": "5", **extra}
    return ProviderAccount(provider="kkiapay", name="main", settings=settings,
                           callback_url="http://127.0.0.1/callbacks/kkiapay/main")


PaymentFactory = Callable[..., Payment]


def build_payment(amount: int = 5000, *, direction: Direction = Direction.COLLECTION,
                  channel: str = "", phone: str = "+2290197000000",
                  status: Status = Status.ACTION_REQUIRED,
                  provider_reference: str = "") -> Payment:
    now = datetime.now(UTC)
    payout = direction is Direction.PAYOUT
    return Payment(
        id=new_payout_id() if payout else new_payment_id(), tenant="shop",
        direction=direction, provider="kkiapay", account="main",
        method=Method.MOBILE_MONEY, amount=Money.of(amount, "XOF"),
        idempotency_key="key-1", created_at=now, updated_at=now,
        channel=channel or ("mtn-bj" if payout else "kkiapay-widget"), country="BJ",
        customer=Customer(phone_number=phone, name="Afi Dossou"),
        description="order 42", status=status, provider_reference=provider_reference,
    )


@dataclass
class Receiver:
    """A minimal callback listener for one connector: journal, verify, parse, answer."""

    connector: KkiapayConnector | None = None
    journal: list[InboundCallback] = field(default_factory=list)
    outcomes: list[CallbackOutcome] = field(default_factory=list)
    events: list[CallbackEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    force_status: int = 0
    fail_first: int = 0  # with force_status: only the first N deliveries get it (0: all)
    url: str = ""

    def reset(self) -> None:
        self.journal.clear()
        self.outcomes.clear()
        self.events.clear()
        self.seen.clear()
        self.force_status = 0
        self.fail_first = 0

    async def handle(self, request: web.Request) -> web.Response:
        callback = InboundCallback(
            provider="kkiapay", account="main",
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(), query=dict(request.query),
            remote=request.remote or "", received_at=datetime.now(UTC),
        )
        self.journal.append(callback)
        if self.force_status and (not self.fail_first or len(self.journal) <= self.fail_first):
            return web.Response(status=self.force_status, body=b"down")
        assert self.connector is not None
        try:
            self.connector.verify_callback(callback)
            events = self.connector.parse_callback(callback)
        except CallbackRejected:
            outcome = CallbackOutcome.REJECTED
        else:
            fresh = [e for e in events if e.event_key not in self.seen]
            self.seen.update(e.event_key for e in events)
            self.events.extend(fresh)
            outcome = CallbackOutcome.APPLIED if fresh else CallbackOutcome.DUPLICATE
        self.outcomes.append(outcome)
        answer = self.connector.callback_answer(outcome)
        return web.Response(status=answer.status, body=answer.body,
                            content_type=answer.content_type)
