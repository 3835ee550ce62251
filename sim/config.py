"""One config base: typed, frozen dataclasses with a versioned JSON round trip.

Every configuration that shapes a result (a build, a table, a campaign, a study) derives
from :class:`Config`. Its JSON form carries ``format`` (the class's stable name) and
``version``; reading checks both and names the fix when they do not match, so a result file
always says, and can reproduce, the settings it was made with::

    @dataclass(frozen=True)
    class TableConfig(Config):
        FORMAT: ClassVar[str] = "flipclock.table"
        periods: tuple[int, ...] = ()

    TableConfig.from_json(cfg.to_json()) == cfg

Values are converted by the field's type hint: tuples (also nested), nested configs and
dataclasses, ``Path``, optionals and plain JSON scalars.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import SimError

__all__ = ["Config", "ConfigError", "from_jsonable", "to_jsonable"]

C = TypeVar("C", bound="Config")


class ConfigError(SimError, ValueError):
    """A stored configuration cannot be read (another format, version, or bad fields)."""


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses become dicts, tuples lists, paths strings."""
    if isinstance(value, Config):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _is_instance_of(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint) or hint
    try:
        return isinstance(value, origin)
    except TypeError:
        return False


def from_jsonable(value: Any, hint: Any) -> Any:
    """Convert JSON data ``value`` to the type ``hint`` (the inverse of :func:`to_jsonable`)."""
    if value is None or hint is Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        for option in options:  # an exact scalar match first (int | str keeps a str a str)
            if option in (int, float, str, bool) and type(value) is option:
                return value
        last: Exception | None = None
        for option in options:
            try:
                return from_jsonable(value, option)
            except (TypeError, ValueError, ConfigError) as exc:
                last = exc
        raise ConfigError(f"value {value!r} does not fit {hint}") from last
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(v, args[0]) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f"expected {len(args)} items, got {value!r}")
        return tuple(from_jsonable(v, a) for v, a in zip(value, args or [Any] * len(value),
                                                         strict=True))
    if origin is list:
        return [from_jsonable(v, args[0] if args else Any) for v in value]
    if origin is dict:
        kt, vt = args if args else (Any, Any)
        return {from_jsonable(k, kt): from_jsonable(v, vt) for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Config):
        return hint.from_dict(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"expected an object for {hint.__name__}, got {value!r}")
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: from_jsonable(value[f.name], hints[f.name])
                       for f in dataclasses.fields(hint) if f.init and f.name in value})
    if hint is Path:
        return Path(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not _is_instance_of(value, hint):
        raise ConfigError(f"expected {hint.__name__}, got {value!r}")
    return value


class Config:
    """Base of frozen dataclass configs; subclasses set ``FORMAT`` (and ``VERSION``).

    ``to_dict``/``to_json`` write ``{"format", "version", fields...}``; ``from_dict`` and
    ``from_json`` refuse another format, a newer or older version, unknown or missing
    fields, with one line naming the fix. ``__post_init__`` validation runs on reading too.
    """

    FORMAT: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON data, headed by ``format`` and ``version``."""
        assert dataclasses.is_dataclass(self), "Config subclasses must be dataclasses"
        body = {f.name: to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"format": self._format(), "version": self.VERSION, **body}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal configs give equal text and hashes."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False)

    @classmethod
    def _format(cls) -> str:
        return cls.FORMAT or f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def from_dict(cls: type[C], data: Any) -> C:
        """Rebuild a config written by :meth:`to_dict` (checks format, version, fields)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a {cls.__name__} must be a JSON object, not {type(data).__name__}")
        data = dict(data)
        fmt = data.pop("format", cls._format())
        version = data.pop("version", cls.VERSION)
        if fmt != cls._format():
            raise ConfigError(f"settings of format {fmt!r} are not a {cls.__name__} "
                              f"({cls._format()!r})")
        if version != cls.VERSION:
            raise ConfigError(f"{cls.__name__} settings of version {version!r} were written by "
                              f"another flipclock (this one reads version {cls.VERSION}); "
                              "re-run with a fresh output folder")
        assert dataclasses.is_dataclass(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} settings: {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        kwargs = {name: from_jsonable(value, hints[name]) for name, value in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"incomplete {cls.__name__} settings ({exc})") from None

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """Rebuild a config from :meth:`to_json` text."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{cls.__name__} settings are not valid JSON ({exc})") from None
        return cls.from_dict(data)
