"""`malipo serve --demo`: every provider's fake in this process, one demo account each.

The fakes are the ones the connector tests use (they enforce each provider's documented
formats and signatures), started on 127.0.0.1 ephemeral ports with fresh random credentials.
Each demo account points its connector at its fake, and each fake sends its callbacks to the
real callback listener, so every flow runs the code paths production runs. A small "bank"
task moves Kwik's debit orders along, as the banks do, so no flow needs a manual step except
the ones a customer would take (OTP, KKiaPay's widget, a bill's commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any, TypeVar

from malipo.config import AccountConfig, PolicyConfig, Settings
from malipo.sandbox.fake_provider import FakeProvider
from malipo.sandbox.gateway import GatewayFake
from malipo.sandbox.jambopay import JambopayFake
from malipo.sandbox.kkiapay import KkiapayFake
from malipo.sandbox.kwik import KwikFake
from malipo.sandbox.paykassma import PaykassmaFake

ACCOUNT = "demo"
_F = TypeVar("_F", bound=FakeProvider)
PROVIDERS = ("simulator", "gateway", "paykassma", "kkiapay", "jambopay", "kwik")


def _key() -> str:
    return secrets.token_hex(12)


@dataclass
class Sandbox:
    """Owns the fakes; `start` returns the settings with the demo accounts added."""

    timeout_s: float = 10.0         # connector timeout towards each fake
    hang_s: float = 15.0            # how long an injected response "timeout" hangs
    complete_after_s: float = 2.0   # gateway and simulator: time to the final callback
    bank_step_s: float = 3.0        # Kwik: one bank step (Pending -> Sent to Bank -> Paid)
    poll_after_s: float = 3.0       # reconciler: first poll of a stale payment
    fakes: dict[str, FakeProvider] = field(default_factory=dict)
    _bank: asyncio.Task[None] | None = None

    @property
    def gateway(self) -> GatewayFake:
        return self._fake("gateway", GatewayFake)

    @property
    def paykassma(self) -> PaykassmaFake:
        return self._fake("paykassma", PaykassmaFake)

    @property
    def kkiapay(self) -> KkiapayFake:
        return self._fake("kkiapay", KkiapayFake)

    @property
    def jambopay(self) -> JambopayFake:
        return self._fake("jambopay", JambopayFake)

    @property
    def kwik(self) -> KwikFake:
        return self._fake("kwik", KwikFake)

    def _fake(self, name: str, kind: type[_F]) -> _F:
        fake = self.fakes[name]
        assert isinstance(fake, kind)
        return fake

    async def start(self, settings: Settings) -> Settings:
        base = settings.callback_base()

        def callback(provider: str) -> str:
            return f"{base}/callbacks/{provider}/{ACCOUNT}"

        kwik_token = _key()
        self.fakes = {
            "gateway": GatewayFake(merchant_id="demo-merchant", secret_key=_key(),
                                   public_id="demo", otp="1234",
                                   complete_after_s=self.complete_after_s),
            "paykassma": PaykassmaFake(secret=_key(), withdrawal_private_key=_key(),
                                       postback_access_key=_key(), postback_private_key=_key(),
                                       retry_delay_s=0.5),
            "kkiapay": KkiapayFake(public_key="pk_" + _key(), private_key="tpk_" + _key(),
                                   secret_key="tsk_" + _key(), webhook_secret=_key(),
                                   webhook_url=callback("kkiapay"), retry_delay_s=0.5),
            "jambopay": JambopayFake(username="demo@malipo.test", password=_key(),
                                     app_key=_key()),
            "kwik": KwikFake(api_key=_key(), api_secret=_key(),
                             webhook_url=f"{callback('kwik')}?token={kwik_token}"),
        }
        for fake in self.fakes.values():
            fake.chaos.hang_seconds = self.hang_s
            await fake.start()
        # Paykassma's postback URL is a back-office setting, not part of the request.
        self.paykassma.postback_url = callback("paykassma")
        self.paykassma.auto_postback = True
        self._bank = asyncio.create_task(self._run_bank())
        accounts = [self._account(p, kwik_token) for p in PROVIDERS]
        quick = PolicyConfig(start_after_s=self.poll_after_s, interval_s=self.poll_after_s,
                             backoff=1.5, max_interval_s=30.0, submit_grace_s=5.0,
                             submit_give_up_s=120.0)
        policies = dict.fromkeys(PROVIDERS, quick) | dict(settings.policies)
        return settings.model_copy(update={"accounts": accounts, "policies": policies})

    def _account(self, provider: str, kwik_token: str) -> AccountConfig:
        timeout = str(self.timeout_s)
        values: dict[str, str]
        if provider == "simulator":
            values = {"settle_after_s": str(self.complete_after_s)}
        elif provider == "gateway":
            g = self.gateway
            values = {"base_url": g.base_url, "public_id": g.public_id,
                      "merchant_id": g.merchant_id, "secret_key": g.secret_key}
        elif provider == "paykassma":
            p = self.paykassma
            values = {"api_url": p.base_url, "pluginapi_secret": p.secret,
                      "withdrawal_private_key": p.withdrawal_private_key,
                      "postback_access_key": p.postback_access_key,
                      "postback_private_key": p.postback_private_key,
                      "plugin_url": p.base_url + "/plugin", "is_test": "true"}
        elif provider == "kkiapay":
            k = self.kkiapay
            values = {"base_url": k.base_url, "sandbox": "true",
                      "public_key": k.keys["x-api-key"], "private_key": k.keys["x-private-key"],
                      "secret_key": k.keys["x-secret-key"], "webhook_secret": k.webhook_secret}
        elif provider == "jambopay":
            j = self.jambopay
            values = {"base_url": j.api_base, "username": j.username, "password": j.password,
                      "app_key": j.app_key}
        else:
            w = self.kwik
            values = {"base_url": w.api_url, "api_key": w.api_key, "api_secret": w.api_secret,
                      "payment_methods_id": "pam_debit_order", "webhook_secret": kwik_token,
                      "batch_window_s": "0.2"}
        if provider != "simulator":
            values["timeout_s"] = timeout
        return AccountConfig(provider=provider, name=ACCOUNT, settings=values)

    async def _run_bank(self) -> None:
        while True:
            await asyncio.sleep(self.bank_step_s)
            self.kwik.advance()

    async def stop(self) -> None:
        if self._bank is not None:
            self._bank.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bank
        for fake in self.fakes.values():
            await fake.stop()

    def guide(self, grpc_address: str) -> str:
        """How to try each flow, printed under the banner."""
        f: dict[str, Any] = {name: fake.base_url for name, fake in self.fakes.items()}
        return "\n".join([
            "",
            f"Offline sandbox: every provider faked in this process (account '{ACCOUNT}').",
            f"Call {grpc_address} with the API key above; each flow below is one RPC.",
            "  simulator  CreatePayment provider=simulator KES; the phone's last two digits",
            "             pick the scenario (README table): 00 succeeds, 03 asks an OTP, ...",
            f"  gateway    {f['gateway']}  CreatePayment provider=gateway channel=2390 KES",
            "             phone +254712345678: PROCESSING, then a signed callback: SUCCEEDED",
            f"  paykassma  {f['paykassma']}  CreatePayment provider=paykassma channel=mpesa",
            "             KES phone +254712345678: the postback makes it SUCCEEDED",
            f"  kkiapay    {f['kkiapay']}  CreatePayment provider=kkiapay XOF:",
            "             ACTION_REQUIRED (widget); the customer paying is",
            f"             curl -d '{{\"amount\":5000,\"data\":\"<payment id>\"}}' "
            f"{f['kkiapay']}/_test/widget",
            f"  jambopay   {f['jambopay']}  CreatePayout provider=jambopay channel=kplc",
            "             KES provider_fields meter_number=14234567890: ACTION_REQUIRED",
            "             (commit), then ConfirmPayment: SUCCEEDED with the token",
            f"  kwik       {f['kwik']}  CreatePayment provider=kwik ZAR method=DEBIT_ORDER",
            "             bank account 10004301100 (branch 051001) and",
            "             provider_fields action_date=YYYY-MM-DD: the bank pays it in steps",
            "Rehearse failures on any fake (one-shot; \"count\" for more):",
            "  curl -d '{\"next_callback\":\"late\",\"late_seconds\":10}' <fake>/_control",
            "       next_callback: late | twice | out_of_order | forged | never",
            "  curl -d '{\"next_response\":\"timeout\"}' <fake>/_control",
            "       next_response: timeout | error_500 | error_500_after",
            "  GET <fake>/_control shows what is armed. ListProviderExchanges(payment_id)",
            "  shows what was said to the provider, masked.",
        ])
