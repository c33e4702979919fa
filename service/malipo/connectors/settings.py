"""An account's settings (ProviderAccount.settings: strings from the config file or the
environment) read one way by every connector's settings.py.

The same spellings are accepted everywhere: a flag is one of FLAG_SPELLINGS (any case,
surrounding blanks ignored), a choice is matched the same way, a list is comma-separated with
blanks and empty items dropped. A missing required setting is the KeyError of
ProviderAccount.setting; an unusable value is BadSetting, which names the account and the
setting and never carries a secret's value (secrets are only ever missing, never parsed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from malipo.app.connector import ProviderAccount
from malipo.domain.errors import FieldViolation, InvalidRequest

TRUE_SPELLINGS = ("true", "1", "yes", "on")
FALSE_SPELLINGS = ("false", "0", "no", "off")
FLAG_SPELLINGS = TRUE_SPELLINGS + FALSE_SPELLINGS
_SHOWN = 40  # characters of a bad (non-secret) value repeated in the error


class BadSetting(InvalidRequest):
    """A provider account's setting holds a value its connector cannot use."""

    reason = "BAD_PROVIDER_SETTINGS"

    def __init__(self, account: ProviderAccount, key: str, rule: str) -> None:
        super().__init__(FieldViolation(
            f"settings.{key}",
            f"{rule} (provider account {account.provider}/{account.name})"))


@dataclass(frozen=True, slots=True)
class SettingsReader:
    """Typed reads of one account's settings; every default is the caller's, in its
    settings.py, next to the README's provider-assumptions table."""

    account: ProviderAccount

    def text(self, key: str, default: str | None = None) -> str:
        """The value as written; required (KeyError naming the account) without a default."""
        return self.account.setting(key, default)

    def secret(self, key: str, default: str | None = None) -> str:
        """A credential, as written. No rule inspects it, so no error can repeat it; keep its
        dataclass field `repr=False`."""
        return self.account.setting(key, default)

    def flag(self, key: str, default: bool) -> bool:
        raw = self.account.settings.get(key)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word not in FLAG_SPELLINGS:
            raise self.refuse(key, f"true or false ({'/'.join(FLAG_SPELLINGS)}), "
                                   f"not {_shown(raw)}")
        return word in TRUE_SPELLINGS

    def integer(self, key: str, default: int) -> int:
        raw = self.account.settings.get(key)
        if raw is None:
            return default
        try:
            return int(raw.strip())
        except ValueError:
            raise self.refuse(key, f"a whole number, not {_shown(raw)}") from None

    def number(self, key: str, default: float) -> float:
        raw = self.account.settings.get(key)
        if raw is None:
            return default
        try:
            value = float(raw.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise self.refuse(key, f"a number, not {_shown(raw)}")
        return value

    def one_of(self, key: str, default: str, allowed: Iterable[str]) -> str:
        """One of `allowed` (matched ignoring case and surrounding blanks), in its spelling
        there."""
        choices = tuple(allowed)
        raw = self.account.settings.get(key)
        if raw is None:
            return default
        for choice in choices:
            if raw.strip().lower() == choice.lower():
                return choice
        raise self.refuse(key, f"one of {', '.join(choices)}, not {_shown(raw)}")

    def items(self, key: str, default: str = "") -> tuple[str, ...]:
        """A comma-separated list, each item stripped, empty items dropped."""
        raw = self.account.setting(key, default)
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def secrets(self, *keys: str) -> tuple[str, ...]:
        """The configured, non-empty secrets among `keys`, in order: the current one, then
        those still accepted while it is rotated."""
        return tuple(value for key in keys if (value := self.account.settings.get(key, "")))

    def refuse(self, key: str, rule: str) -> BadSetting:
        """The error for a value a connector's own check refuses (raise it)."""
        return BadSetting(self.account, key, rule)


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "...")
