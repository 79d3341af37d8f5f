"""The bot's settings: one frozen object read from the environment (and `.env`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from bot.limits import Limit, parse_limits
from bot.qwen.catalogue import Catalogue, CatalogueError, load_catalogue
from bot.sizes import DEFAULT_SIZES, ImageSize, parse_size_table

T = TypeVar("T")

REGION_ROOTS = {
    "intl": "https://dashscope-intl.aliyuncs.com/api/v1",
    "cn": "https://dashscope.aliyuncs.com/api/v1",
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and what is expected."""

    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"{name}: {expected}")
        self.name = name


class Secret:
    """A secret string that never prints itself (repr, str and f-strings show a mask)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: pass it straight to the library that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


#: Where Discord serves attachments from: the only hosts edit inputs are downloaded from.
DISCORD_CDN_HOSTS = ("cdn.discordapp.com", "media.discordapp.net")
DEFAULT_ENABLED_MODELS = ("qwen-image-plus", "qwen-image-edit-plus")


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment. Names in comments are the variables."""

    discord_token: Secret  # DISCORD_TOKEN
    dashscope_api_key: Secret  # DASHSCOPE_API_KEY (several, one per account: comma-separated)
    dashscope_region: str = "intl"  # DASHSCOPE_REGION
    dashscope_base_url: str = REGION_ROOTS["intl"]  # DASHSCOPE_BASE_URL
    result_hosts: tuple[str, ...] = ("*.aliyuncs.com",)  # DASHSCOPE_RESULT_HOSTS
    model: str = "qwen-image-plus"  # QWEN_IMAGE_MODEL
    sizes: tuple[ImageSize, ...] = DEFAULT_SIZES  # QWEN_IMAGE_SIZES
    default_size: str = "1328*1328"  # QWEN_IMAGE_DEFAULT_SIZE
    max_concurrency: int = 2  # DASHSCOPE_MAX_CONCURRENCY
    max_submits_per_second: float = 2.0  # DASHSCOPE_MAX_SUBMITS_PER_SECOND
    max_retries: int = 3  # DASHSCOPE_MAX_RETRIES
    use_async_tasks: bool = False  # DASHSCOPE_API_MODE (sync or async)
    poll_seconds: float = 3.0  # DASHSCOPE_POLL_SECONDS
    request_timeout: float = 180.0  # DASHSCOPE_TIMEOUT_SECONDS
    database_path: Path = Path("data/qwen-imagine.sqlite3")  # DATABASE_PATH
    database_url: Secret | None = None  # DATABASE_URL: PostgreSQL instead of the SQLite file
    discord_api_base_url: str | None = None  # DISCORD_API_BASE_URL
    discord_gateway_url: str | None = None  # DISCORD_GATEWAY_URL
    command_guild_ids: tuple[int, ...] = ()  # COMMAND_GUILD_IDS
    log_level: str = "INFO"  # LOG_LEVEL
    default_limits: tuple[Limit, ...] = ()  # DEFAULT_LIMITS
    usage_retention_days: int = 90  # USAGE_RETENTION_DAYS
    max_jobs_per_member: int = 3  # MAX_JOBS_PER_MEMBER
    max_jobs_per_guild: int = 30  # MAX_JOBS_PER_GUILD
    shutdown_grace_seconds: float = 25.0  # SHUTDOWN_GRACE_SECONDS
    edit_model: str = "qwen-image-edit-plus"  # QWEN_EDIT_MODEL
    attachment_hosts: tuple[str, ...] = DISCORD_CDN_HOSTS  # DISCORD_ATTACHMENT_HOSTS
    catalogue: Catalogue = field(default_factory=load_catalogue)  # MODEL_CATALOGUE_FILE
    enabled_models: tuple[str, ...] = DEFAULT_ENABLED_MODELS  # ENABLED_MODELS
    monthly_budget_usd: float | None = None  # MONTHLY_BUDGET_USD
    process_heartbeat_seconds: float = 5.0  # PROCESS_HEARTBEAT_SECONDS
    process_stale_seconds: float = 15.0  # PROCESS_STALE_SECONDS
    process_poll_seconds: float = 1.0  # PROCESS_POLL_SECONDS
    shard_count: int | None = None  # SHARD_COUNT: gateway shards over every process; None: not sharded
    shard_ids: tuple[int, ...] = ()  # SHARD_IDS: the shards this process holds; empty: all of them

    @property
    def database_secrets(self) -> tuple[str, ...]:
        """The database URL and its password (as written and decoded), for the log's redaction."""
        if self.database_url is None:
            return ()
        url = self.database_url.reveal()
        password = urlsplit(url).password or ""
        return (url, password, unquote(password))

    @property
    def held_shards(self) -> tuple[int, ...]:
        """The gateway shards this process connects: SHARD_IDS, else every one; empty when not sharded."""
        if self.shard_count is None:
            return ()
        return self.shard_ids or tuple(range(self.shard_count))

    @property
    def log_level_number(self) -> int:
        """The numeric `logging` level."""
        return logging.getLevelNamesMapping()[self.log_level]

    @property
    def api_keys(self) -> tuple[Secret, ...]:
        """Each API key of DASHSCOPE_API_KEY (one per account; each is a lane of its own)."""
        keys = [key.strip() for key in self.dashscope_api_key.reveal().split(",")]
        return tuple(Secret(key) for key in dict.fromkeys(keys) if key)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build the settings from an environment mapping, or raise SettingsError naming the bad one."""
    reader = _Reader(env)
    region = reader.choice("DASHSCOPE_REGION", ("intl", "cn"), "intl")
    sizes = reader.parse("QWEN_IMAGE_SIZES", parse_size_table, DEFAULT_SIZES, _SIZES_EXPECTED)
    default_size = reader.text("QWEN_IMAGE_DEFAULT_SIZE", "1328*1328")
    if default_size not in {s.value for s in sizes}:
        raise SettingsError(
            "QWEN_IMAGE_DEFAULT_SIZE", f"one of the configured sizes ({', '.join(s.value for s in sizes)})"
        )
    catalogue = _read_catalogue(reader.text("MODEL_CATALOGUE_FILE", ""))
    model, edit_model, enabled = _read_models(reader, catalogue)
    heartbeat = reader.number("PROCESS_HEARTBEAT_SECONDS", 5.0, 0.05, 60.0)
    stale = reader.number("PROCESS_STALE_SECONDS", 15.0, 0.2, 600.0)
    if stale < 2 * heartbeat:  # a live process must never look gone between two heartbeats
        raise SettingsError("PROCESS_STALE_SECONDS", f"at least twice PROCESS_HEARTBEAT_SECONDS ({2 * heartbeat:g})")
    database_url = load_database_url(env)
    shard_count, shard_ids = _read_shards(reader, one_process=database_url is None)
    return Settings(
        discord_token=reader.secret("DISCORD_TOKEN", "your bot's token from the Discord developer portal"),
        dashscope_api_key=_api_keys(reader),
        dashscope_region=region,
        dashscope_base_url=reader.url("DASHSCOPE_BASE_URL", REGION_ROOTS[region]),
        result_hosts=reader.parse(
            "DASHSCOPE_RESULT_HOSTS", _parse_host_patterns, ("*.aliyuncs.com",), "comma-separated host patterns"
        ),
        model=model,
        sizes=sizes,
        default_size=default_size,
        max_concurrency=reader.integer("DASHSCOPE_MAX_CONCURRENCY", 2, 1, 64),
        max_submits_per_second=float(reader.integer("DASHSCOPE_MAX_SUBMITS_PER_SECOND", 2, 1, 1000)),
        max_retries=reader.integer("DASHSCOPE_MAX_RETRIES", 3, 0, 10),
        use_async_tasks=reader.choice("DASHSCOPE_API_MODE", ("sync", "async"), "sync") == "async",
        poll_seconds=reader.number("DASHSCOPE_POLL_SECONDS", 3.0, 0.01, 60.0),
        request_timeout=float(reader.integer("DASHSCOPE_TIMEOUT_SECONDS", 180, 10, 600)),
        database_path=Path(reader.text("DATABASE_PATH", "data/qwen-imagine.sqlite3")),
        database_url=database_url,
        discord_api_base_url=reader.optional_url("DISCORD_API_BASE_URL", ("http", "https")),
        discord_gateway_url=reader.optional_url("DISCORD_GATEWAY_URL", ("ws", "wss")),
        command_guild_ids=reader.parse(
            "COMMAND_GUILD_IDS", _parse_ids, (), "comma-separated guild ids (numbers), or empty"
        ),
        log_level=reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO", normalise=str.upper),
        default_limits=reader.parse("DEFAULT_LIMITS", parse_limits, parse_limits(DEFAULT_LIMITS), _LIMITS_EXPECTED),
        usage_retention_days=reader.integer("USAGE_RETENTION_DAYS", 90, 1, 3650),
        max_jobs_per_member=reader.integer("MAX_JOBS_PER_MEMBER", 3, 1, 1000),
        max_jobs_per_guild=reader.integer("MAX_JOBS_PER_GUILD", 30, 1, 100000),
        shutdown_grace_seconds=float(reader.integer("SHUTDOWN_GRACE_SECONDS", 25, 0, 3600)),
        edit_model=edit_model,
        attachment_hosts=reader.parse(
            "DISCORD_ATTACHMENT_HOSTS", _parse_host_patterns, DISCORD_CDN_HOSTS, "comma-separated host patterns"
        ),
        catalogue=catalogue,
        enabled_models=enabled,
        monthly_budget_usd=reader.budget("MONTHLY_BUDGET_USD"),
        process_heartbeat_seconds=heartbeat,
        process_stale_seconds=stale,
        process_poll_seconds=reader.number("PROCESS_POLL_SECONDS", 1.0, 0.05, 60.0),
        shard_count=shard_count,
        shard_ids=shard_ids,
    )


#: Discord allows at most 2,500 servers per shard; this bounds SHARD_COUNT far above any real need.
MAX_SHARDS = 10_000


def _read_shards(reader: _Reader, *, one_process: bool) -> tuple[int | None, tuple[int, ...]]:
    """SHARD_COUNT and SHARD_IDS. With SQLite (one process) this process must hold every shard."""
    raw_count, raw_ids = reader.text("SHARD_COUNT", ""), reader.text("SHARD_IDS", "")
    count = reader.integer("SHARD_COUNT", 1, 1, MAX_SHARDS) if raw_count else None
    if not raw_ids:
        return count, ()
    if count is None:
        raise SettingsError("SHARD_IDS", "needs SHARD_COUNT, the number of shards over every process")
    expected = f"comma-separated shard ids from 0 to {count - 1} (SHARD_COUNT is {count}), each once"
    none: tuple[int, ...] = ()
    ids = reader.parse("SHARD_IDS", _parse_ids, none, expected)
    if not ids:
        raise SettingsError("SHARD_IDS", f"{expected} (no id given)")
    beyond = [shard for shard in ids if shard >= count]
    if beyond:
        raise SettingsError("SHARD_IDS", f"{expected} (got {beyond[0]})")
    twice = [shard for shard in dict.fromkeys(ids) if ids.count(shard) > 1]
    if twice:
        raise SettingsError("SHARD_IDS", f"{expected} ({twice[0]} is given twice)")
    missing = sorted(set(range(count)) - set(ids))
    if one_process and missing:
        raise SettingsError(
            "SHARD_IDS",
            "with SQLite one process holds every shard: leave SHARD_IDS empty, or set DATABASE_URL (PostgreSQL) "
            f"to split shards over processes (no process would hold shard{'s' if len(missing) > 1 else ''} "
            f"{_listed(missing)})",
        )
    return count, tuple(sorted(ids))


def _listed(numbers: list[int], most: int = 5) -> str:
    shown = ", ".join(map(str, numbers[:most]))
    return f"{shown} … ({len(numbers)} in all)" if len(numbers) > most else shown


def _read_catalogue(path: str) -> Catalogue:
    try:
        return load_catalogue(Path(path) if path else None)
    except CatalogueError as error:
        raise SettingsError("MODEL_CATALOGUE_FILE", f"a valid model catalogue: {error}") from None


def _read_models(reader: _Reader, catalogue: Catalogue) -> tuple[str, str, tuple[str, ...]]:
    """The default text-to-image and edit models, and every enabled model (the defaults included)."""
    enabled = [name.strip() for name in reader.text("ENABLED_MODELS", ",".join(DEFAULT_ENABLED_MODELS)).split(",")]
    enabled = [name for name in enabled if name]
    unknown = [name for name in enabled if catalogue.get(name) is None]
    if unknown or not enabled:
        known = ", ".join(catalogue.models)
        raise SettingsError("ENABLED_MODELS", f"comma-separated models of the catalogue ({known}); got {unknown}")
    defaults = []
    for name, does, fallback in (("QWEN_IMAGE_MODEL", "text", "qwen-image-plus"), ("QWEN_EDIT_MODEL", "edit", None)):
        first = next((m for m in enabled if catalogue.models[m].does == does), fallback)
        chosen = reader.text(name, first or "")
        spec = catalogue.get(chosen)
        if spec is None or spec.does != does:
            options = ", ".join(m for m, s in catalogue.models.items() if s.does == does)
            raise SettingsError(name, f"one of {options} (got {chosen!r})")
        defaults.append(chosen)
        if chosen not in enabled:
            enabled.append(chosen)
    return defaults[0], defaults[1], tuple(dict.fromkeys(enabled))


def load_database_url(env: Mapping[str, str]) -> Secret | None:
    """DATABASE_URL (postgresql:// or Heroku's postgres://), kept secret: it may carry a password.
    Errors name the variable, never its value."""
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return None
    expected = "a PostgreSQL URL, postgresql://user:password@host:port/database (or postgres://...)"
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError("DATABASE_URL", f"{expected}; got a URL that does not start with postgresql://")
    try:
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError:
        raise SettingsError("DATABASE_URL", f"{expected}; its port is not a number") from None
    return Secret(raw)


DEFAULT_LIMITS = "member/hour=5,member/day=20,server/day=200"
_LIMITS_EXPECTED = "comma-separated scope/window=max items (member|server, hour|day|week|month), or none"
_SIZES_EXPECTED = "comma-separated W*H sizes, optionally named, e.g. 'Square 1:1=1328*1328,Wide 16:9=1664*928'"


class _Reader:
    """Reads and validates one variable at a time; empty counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

    def secret(self, name: str, expected: str) -> Secret:
        value = self._env.get(name, "").strip()
        if not value:
            raise SettingsError(name, f"required: {expected}")
        return Secret(value)

    def choice(
        self, name: str, options: tuple[str, ...], default: str, normalise: Callable[[str], str] = str.lower
    ) -> str:
        value = normalise(self.text(name, default))
        if value not in options:
            raise SettingsError(name, f"one of {', '.join(options)} (got {value!r})")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, f"a whole number from {low} to {high} (got {raw!r})") from None
        if not low <= value <= high:
            raise SettingsError(name, f"a whole number from {low} to {high} (got {value})")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name, str(default))
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(name, f"a number from {low:g} to {high:g} (got {raw!r})") from None
        if not low <= value <= high:
            raise SettingsError(name, f"a number from {low:g} to {high:g} (got {raw})")
        return value

    def budget(self, name: str) -> float | None:
        raw = self.text(name, "")
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(name, f"a number of US dollars, or empty for no cap (got {raw!r})") from None
        if not 0 <= value <= 1_000_000:
            raise SettingsError(name, f"a number of US dollars from 0 to 1000000 (got {raw})")
        return value

    def url(self, name: str, default: str) -> str:
        return self.optional_url(name, ("http", "https")) or default

    def optional_url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        raw = self.text(name, "")
        if not raw:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not parts.netloc:
            raise SettingsError(name, f"a {' or '.join(schemes)} URL (got {raw!r})")
        return raw.rstrip("/")

    def parse(self, name: str, parser: Callable[[str], T], default: T, expected: str) -> T:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            return parser(raw)
        except ValueError as exc:
            raise SettingsError(name, f"{expected} ({exc})") from None


def _parse_host_patterns(raw: str) -> tuple[str, ...]:
    patterns = tuple(p.strip().lower() for p in raw.split(",") if p.strip())
    for pattern in patterns:
        if "/" in pattern or ":" in pattern.replace("::1", ""):
            raise ValueError(f"{pattern!r} is not a host name pattern")
    if not patterns:
        raise ValueError("no patterns given")
    return patterns


def _parse_ids(raw: str) -> tuple[int, ...]:
    ids = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"{part!r} is not a number")
        ids.append(int(part))
    return tuple(ids)


def _api_keys(reader: _Reader) -> Secret:
    """DASHSCOPE_API_KEY: one key, or several (one per account) separated by commas."""
    keys = reader.secret("DASHSCOPE_API_KEY", "your Model Studio (DashScope) API key")
    if not any(key.strip() for key in keys.reveal().split(",")):
        raise SettingsError("DASHSCOPE_API_KEY", "required: one or more API keys, comma-separated")
    return keys
