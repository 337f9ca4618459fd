"""A guild's server settings, and one change to them: plain values, checked once here for every
backend (`bot.store.base` re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.store.checks import check_action, check_id

__all__ = ["MAX_CHANNELS", "MAX_DISABLED", "GuildSettings", "SettingsChange"]

# At most this many channels a guild may restrict the commands to.
MAX_CHANNELS = 3
# At most this many names a guild may turn off (nekos.best has under a hundred categories).
MAX_DISABLED = 256


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """A guild's server settings; `GuildSettings()` is what a guild that set nothing gets.

    `disabled`: category names and the kinds "gif" / "image" that the guild turned off.
    `channels`: the channels commands answer in, at most `MAX_CHANNELS` (empty: everywhere).
    `cooldown`: (count, seconds) per member, None for the process default; count 0 is off.
    `pings`: whether answers mention their targets.
    `leaderboard`: whether `/leaderboard` answers in the guild.

    Any iterable is accepted for `disabled` and `channels` (stored as a frozenset and an
    ordered tuple without repeats); values no backend could store raise `ValueError`."""

    disabled: frozenset[str] = field(default_factory=frozenset)
    channels: tuple[int, ...] = ()
    cooldown: tuple[int, int] | None = None
    pings: bool = True
    leaderboard: bool = True

    def __post_init__(self) -> None:
        disabled = frozenset(self.disabled)
        if len(disabled) > MAX_DISABLED:
            raise ValueError(f"at most {MAX_DISABLED} disabled names, not {len(disabled)}")
        for name in disabled:
            check_action(name)
        channels = tuple(dict.fromkeys(check_id("channel id", c) for c in self.channels))
        if len(channels) > MAX_CHANNELS:
            raise ValueError(f"at most {MAX_CHANNELS} channels, not {len(channels)}")
        cooldown = self.cooldown
        if cooldown is not None:
            count, seconds = cooldown
            for name, value in (("cooldown count", count), ("cooldown seconds", seconds)):
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
                    raise ValueError(f"{name} must be an int in 0..2**31-1, not {value!r}")
            cooldown = (count, seconds)
        if not isinstance(self.pings, bool):
            raise ValueError(f"pings must be a bool, not {self.pings!r}")
        if not isinstance(self.leaderboard, bool):
            raise ValueError(f"leaderboard must be a bool, not {self.leaderboard!r}")
        # Frozen: normalised once here, so equal settings compare (and cache) equal.
        object.__setattr__(self, "disabled", disabled)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "cooldown", cooldown)


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """One `/config` change, which `Store.change_guild_settings` applies to what is stored when
    it commits (not to what the caller read), so concurrent changes of one guild all hold.

    `disable` / `enable`: names added to / taken from `disabled`. `channels`, `cooldown`,
    `pings`, `leaderboard`: the new value, None to keep the stored one; `default_cooldown`:
    back to the process default. Values no backend could store raise `ValueError`, as for
    `GuildSettings`."""

    disable: frozenset[str] = field(default_factory=frozenset)
    enable: frozenset[str] = field(default_factory=frozenset)
    channels: tuple[int, ...] | None = None
    cooldown: tuple[int, int] | None = None
    default_cooldown: bool = False
    pings: bool | None = None
    leaderboard: bool | None = None

    def __post_init__(self) -> None:
        disable, enable = frozenset(self.disable), frozenset(self.enable)
        if disable & enable:
            raise ValueError(f"disabled and enabled at once: {sorted(disable & enable)}")
        if self.default_cooldown and self.cooldown is not None:
            raise ValueError("a cooldown and the default cooldown at once")
        # Every value checked as GuildSettings checks it.
        checked = GuildSettings(
            disabled=disable | enable,
            channels=self.channels or (),
            cooldown=self.cooldown,
            pings=True if self.pings is None else self.pings,
            leaderboard=True if self.leaderboard is None else self.leaderboard,
        )
        object.__setattr__(self, "disable", disable)
        object.__setattr__(self, "enable", enable)
        if self.channels is not None:
            object.__setattr__(self, "channels", checked.channels)
        object.__setattr__(self, "cooldown", checked.cooldown)

    def applied_to(self, settings: GuildSettings) -> GuildSettings:
        """`settings` with this change made."""
        cooldown = settings.cooldown if self.cooldown is None else self.cooldown
        return GuildSettings(
            disabled=(settings.disabled | self.disable) - self.enable,
            channels=settings.channels if self.channels is None else self.channels,
            cooldown=None if self.default_cooldown else cooldown,
            pings=settings.pings if self.pings is None else self.pings,
            leaderboard=settings.leaderboard if self.leaderboard is None else self.leaderboard,
        )
