"""Limit values: a (scope, window, max) triple, and the `DEFAULT_LIMITS` syntax."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.i18n import N_, t, tn

MAX_LIMIT = 100_000


class Scope(StrEnum):
    """Who a limit counts: each member separately, or the whole server together."""

    MEMBER = "member"
    SERVER = "server"


class Window(StrEnum):
    """How far back a limit looks. Windows slide: `hour` is the last 60 minutes."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def seconds(self) -> int:
        """The window's length; a month is 30 days."""
        return _WINDOW_SECONDS[self]


_WINDOW_SECONDS = {Window.HOUR: 3600, Window.DAY: 86400, Window.WEEK: 7 * 86400, Window.MONTH: 30 * 86400}


@dataclass(frozen=True)
class Limit:
    """At most `max_count` images per `scope` in any sliding `window`."""

    scope: Scope
    window: Window
    max_count: int

    @property
    def key(self) -> tuple[Scope, Window]:
        """The (scope, window) pair a guild's own value replaces."""
        return (self.scope, self.window)

    def describe(self) -> str:
        """E.g. `5 images per member per hour`, in the locale in force."""
        return tn(_DESCRIPTIONS[self.key], self.max_count)


#: How a limit reads, for each (scope, window) pair; plural on the number of images.
_DESCRIPTIONS = {
    (Scope.MEMBER, Window.HOUR): N_("service.limit.member_hour"),
    (Scope.MEMBER, Window.DAY): N_("service.limit.member_day"),
    (Scope.MEMBER, Window.WEEK): N_("service.limit.member_week"),
    (Scope.MEMBER, Window.MONTH): N_("service.limit.member_month"),
    (Scope.SERVER, Window.HOUR): N_("service.limit.server_hour"),
    (Scope.SERVER, Window.DAY): N_("service.limit.server_day"),
    (Scope.SERVER, Window.WEEK): N_("service.limit.server_week"),
    (Scope.SERVER, Window.MONTH): N_("service.limit.server_month"),
}
#: A window's name after "per" (`0 per hour`).
WINDOW_NAMES = {
    Window.HOUR: N_("service.window.hour"),
    Window.DAY: N_("service.window.day"),
    Window.WEEK: N_("service.window.week"),
    Window.MONTH: N_("service.window.month"),
}


def parse_limits(raw: str) -> tuple[Limit, ...]:
    """Parse `scope/window=max` items separated by commas, or `none`."""
    if raw.strip().lower() == "none":
        return ()
    limits: dict[tuple[Scope, Window], Limit] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        pair, sep, count = item.partition("=")
        scope, slash, window = pair.strip().lower().partition("/")
        if not sep or not slash:
            raise ValueError(f"{item!r} is not scope/window=max")
        try:
            limit = Limit(Scope(scope), Window(window), int(count))
        except ValueError:
            raise ValueError(f"{item!r}: scope is member or server, window hour/day/week/month, max a number") from None
        if not 0 <= limit.max_count <= MAX_LIMIT:
            raise ValueError(f"{item!r}: max must be from 0 to {MAX_LIMIT}")
        if limit.key in limits:
            raise ValueError(f"{pair.strip()} is given twice")
        limits[limit.key] = limit
    if not limits:
        raise ValueError("no limits given (write 'none' for no default limits)")
    return tuple(limits.values())


def effective_limits(defaults: tuple[Limit, ...], own: tuple[Limit, ...]) -> tuple[Limit, ...]:
    """The defaults with each of the guild's own values replacing the default for its pair only."""
    merged = {limit.key: limit for limit in defaults}
    merged.update({limit.key: limit for limit in own})
    order = {(s, w): i for i, (s, w) in enumerate((s, w) for s in Scope for w in Window)}
    return tuple(sorted(merged.values(), key=lambda limit: order[limit.key]))


@dataclass(frozen=True)
class RoleLimit:
    """A role's own value for one member window."""

    role_id: int
    window: Window
    max_count: int


@dataclass(frozen=True)
class SourcedLimit:
    """A limit as it applies to one member, and where its number comes from: `default`, `server`
    (the guild's own value) or `role` (the most generous value among the member's roles)."""

    limit: Limit
    source: str
    role_id: int | None = None

    def describe_source(self) -> str:
        """`default`, `this server's value` or `role <@&id>`, in the locale in force."""
        if self.source == "role":
            return t("service.limit_source.role", role=f"<@&{self.role_id}>")
        return t("service.limit_source.server") if self.source == "server" else t("service.limit_source.default")


def limits_for_member(
    defaults: tuple[Limit, ...], own: tuple[Limit, ...], roles: tuple[RoleLimit, ...], role_ids: tuple[int, ...]
) -> tuple[SourcedLimit, ...]:
    """The limits that apply to a member holding `role_ids`: for each member window the most generous
    value among their roles, else the guild's own value, else the default; server limits as they are."""
    own_keys = {limit.key for limit in own}
    sourced = {
        limit.key: SourcedLimit(limit, "server" if limit.key in own_keys else "default")
        for limit in effective_limits(defaults, own)
    }
    held = set(role_ids)
    for role in sorted(roles, key=lambda r: (r.max_count, -r.role_id)):
        if role.role_id in held:  # ascending: the most generous value is written last
            sourced[(Scope.MEMBER, role.window)] = SourcedLimit(
                Limit(Scope.MEMBER, role.window, role.max_count), "role", role.role_id
            )
    order = {(s, w): i for i, (s, w) in enumerate((s, w) for s in Scope for w in Window)}
    return tuple(sorted(sourced.values(), key=lambda s: order[s.limit.key]))
