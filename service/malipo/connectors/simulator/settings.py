"""The account settings the simulator reads, parsed once.

  settle_after_s             "1.0": seconds from creation to the final status and callback
  callback_secret            "simulator-secret": signs the callbacks it sends
  previous_callback_secrets  "" (comma-separated): still accepted while rotating
"""

from __future__ import annotations

from dataclasses import dataclass, field

from malipo.app.connector import ProviderAccount
from malipo.connectors.settings import SettingsReader


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    settle_after_s: float
    callback_secret: str = field(repr=False)
    previous_callback_secrets: tuple[str, ...] = field(repr=False)

    @classmethod
    def from_account(cls, account: ProviderAccount) -> SimulatorSettings:
        s = SettingsReader(account)
        return cls(s.number("settle_after_s", 1.0),
                   s.secret("callback_secret", "simulator-secret"),
                   s.items("previous_callback_secrets"))
