"""`malipo serve --demo`: every provider's fake in this process, one demo account each.

The fakes are the ones the connector tests use (they enforce each provider's documented
formats and signatures), started on 127.0.0.1 ephemeral ports with fresh random credentials.
Each demo account points its connector at its fake, and each fake sends its callbacks to the
real callback listener, so every flow runs the code paths production runs. A small "bank"
task moves Kwik's debit orders along, as the banks do, so no flow needs a manual step except
the ones a customer would take (OTP, KKiaPay's widget, a bill's commit). The fakes are found
in this package (`fake_classes`), and each says how it is set up (FakeProvider.for_demo,
demo_settings, demo_guide): adding a provider's fake needs no change here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from typing import TypeVar

from malipo import sandbox as package
from malipo.config import AccountConfig, PolicyConfig, Settings
from malipo.sandbox.fake_provider import DemoSetup, FakeProvider

ACCOUNT = "demo"
_F = TypeVar("_F", bound=FakeProvider)


def fake_classes() -> dict[str, type[FakeProvider]]:
    """Every provider's fake in this package, by provider name: a module here that defines a
    FakeProvider naming a provider is in the sandbox, with nothing to register."""
    found: dict[str, type[FakeProvider]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, FakeProvider) and cls.__module__ == module.__name__
                    and cls.name != FakeProvider.name):
                found[cls.name] = cls
    return dict(sorted(found.items()))


@dataclass
class Sandbox:
    """Owns the fakes; `start` returns the settings with the demo accounts added."""

    timeout_s: float = 10.0         # connector timeout towards each fake
    hang_s: float = 15.0            # how long an injected response "timeout" hangs
    complete_after_s: float = 2.0   # gateway and simulator: time to the final callback
    bank_step_s: float = 3.0        # each fake's demo_step (Kwik: Pending -> Sent to Bank -> Paid)
    poll_after_s: float = 3.0       # reconciler: first poll of a stale payment
    fakes: dict[str, FakeProvider] = field(default_factory=dict)
    _steps: asyncio.Task[None] | None = None

    def fake(self, provider: str, kind: type[_F]) -> _F:
        """The running fake of `provider`, as its own class."""
        found = self.fakes[provider]
        assert isinstance(found, kind)
        return found

    async def start(self, settings: Settings) -> Settings:
        base = settings.callback_base()
        for provider, cls in fake_classes().items():
            fake = cls.for_demo(DemoSetup(f"{base}/callbacks/{provider}/{ACCOUNT}",
                                          complete_after_s=self.complete_after_s))
            fake.chaos.hang_seconds = self.hang_s
            await fake.start()
            self.fakes[provider] = fake
        self._steps = asyncio.create_task(self._run_steps())
        simulator = AccountConfig(provider="simulator", name=ACCOUNT,
                                  settings={"settle_after_s": str(self.complete_after_s)})
        accounts = [simulator, *(
            AccountConfig(provider=provider, name=ACCOUNT,
                          settings={**fake.demo_settings(), "timeout_s": str(self.timeout_s)})
            for provider, fake in self.fakes.items())]
        quick = PolicyConfig(start_after_s=self.poll_after_s, interval_s=self.poll_after_s,
                             backoff=1.5, max_interval_s=30.0, submit_grace_s=5.0,
                             submit_give_up_s=120.0)
        policies = {a.provider: quick for a in accounts} | dict(settings.policies)
        return settings.model_copy(update={"accounts": accounts, "policies": policies})

    async def _run_steps(self) -> None:
        while True:
            await asyncio.sleep(self.bank_step_s)
            for fake in self.fakes.values():
                fake.demo_step()

    async def stop(self) -> None:
        if self._steps is not None:
            self._steps.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._steps
        for fake in self.fakes.values():
            await fake.stop()

    def guide(self, grpc_address: str) -> str:
        """How to try each flow, printed under the banner."""
        lines = [
            "",
            f"Offline sandbox: every provider faked in this process (account '{ACCOUNT}').",
            f"Call {grpc_address} with the API key above; each flow below is one RPC.",
            "  simulator  CreatePayment provider=simulator KES; the phone's last two digits",
            "             pick the scenario (README table): 00 succeeds, 03 asks an OTP, ...",
        ]
        for fake in self.fakes.values():
            lines += [f"  {line}" for line in fake.demo_guide()]
        return "\n".join([
            *lines,
            "Rehearse failures on any fake (one-shot; \"count\" for more):",
            "  curl -d '{\"next_callback\":\"late\",\"late_seconds\":10}' <fake>/_control",
            "       next_callback: late | twice | out_of_order | forged | never",
            "  curl -d '{\"next_response\":\"timeout\"}' <fake>/_control",
            "       next_response: timeout | error_500 | error_500_after",
            "  GET <fake>/_control shows what is armed. ListProviderExchanges(payment_id)",
            "  shows what was said to the provider, masked.",
        ])
