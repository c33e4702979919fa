"""The account settings the simulator reads, parsed once.

  settle_after_s             "1.0": seconds from creation to the final status and callback
  callback_secret            "simulator-secret": signs the callbacks it sends
  previous_callback_secrets  "" (comma-separated): still accepted while rotating
"""

from __future__ import annotations

from dataclasses import dataclass

from malipo.app.connector import ProviderAccount


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    settle_after_s: float
    callback_secret: str
    previous_callback_secrets: tuple[str, ...]

    @classmethod
    def from_account(cls, account: ProviderAccount) -> SimulatorSettings:
        s = account.settings
        return cls(float(s.get("settle_after_s", "1.0")),
                   s.get("callback_secret", "simulator-secret"),
                   tuple(filter(None, s.get("previous_callback_secrets", "").split(","))))
