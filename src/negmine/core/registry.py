"""Registries of components, keyed by short kebab-case names, and the options they are built from.

An :class:`Option` declares one setting once (type, default, range, choices, help); CLI flags,
TOML keys, validation and ``negmine list`` all derive from the declarations. An :class:`Entry`
names a component's class as ``"module:attribute"``, imported on first use, so ``negmine list``
works without the extras installed and error messages list the registered names. Each domain
keeps its own registries (:mod:`negmine.text.registry`, :mod:`negmine.rec.options`,
:mod:`negmine.kg.options`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from negmine.core.errors import ConfigError
from negmine.core.optional import available

_MISSING = object()


def _number(x: float) -> str:
    """A bound as written: integers exactly (4294967295, not 4.29497e+09), others compactly."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


@dataclass(frozen=True)
class Option:
    """One option of a component or run: the single place its name, type, default, range and help
    live. The CLI flags (``--key-with-dashes``), the TOML config keys, ``negmine list`` and the
    validation of Python arguments all derive from it.

    ``arg`` is the constructor keyword (default: ``key``); ``low``/``high`` bound numbers
    (``low_open``/``high_open`` make a bound strict); numbers must be finite.
    """

    key: str
    type: type
    default: Any = None
    help: str = ""
    arg: str | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    multiple: bool = False  # a comma-separated list (a TOML list of strings is joined with commas)

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def keyword(self) -> str:
        return self.arg or self.key

    def describe_range(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        return " and ".join(parts)

    def check(self, value: Any, where: str = "", name: str | None = None) -> Any:
        """``value`` converted to the option's type, or a one-line :class:`ConfigError` naming the
        option (``name``, as the user spelled it), where it came from (``where``: a file; a flag
        names itself) and what is allowed."""
        flag = not where or where.startswith("--")
        at = "" if flag else f"{where}: "
        name = name or (self.flag if flag else repr(self.key))
        if value is None:
            return None
        if self.type is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{at}option {name} must be true or false, got {value!r}")
            return value
        if self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{at}option {name} must be {'an integer' if self.type is int else 'a number'}, "
                                  f"got {value!r}")
            if self.type is int and isinstance(value, float):
                if not value.is_integer():
                    raise ConfigError(f"{at}option {name} must be an integer, got {value!r}")
                value = int(value)
            if not math.isfinite(value):
                raise ConfigError(f"{at}option {name} must be a finite number, got {value!r}")
            if (self.low is not None and (value <= self.low if self.low_open else value < self.low)) or (
                self.high is not None and (value >= self.high if self.high_open else value > self.high)
            ):
                raise ConfigError(f"{at}option {name} must be {self.describe_range()}, got {value!r}")
            return self.type(value)
        if self.type is str:
            if self.multiple and isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = ",".join(value)
            if not isinstance(value, str):
                raise ConfigError(f"{at}option {name} must be a string, got {value!r}")
            if self.choices is not None and value not in self.choices:
                raise ConfigError(f"{at}option {name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        return value


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:attribute", imported on first use
    summary: str
    requires: tuple[str, ...] = ()  # import names of optional dependencies
    options: tuple[Option, ...] = ()  # what the component is built from (constructor keywords)

    def build(self, values: dict[str, Any], **extra: Any) -> Any:
        """Construct the component from a flat option mapping (each option validated), plus
        ``extra`` keywords that are not options (e.g. already built members)."""
        kwargs = {o.keyword: o.check(values.get(o.key, o.default)) for o in self.options}
        return self.load()(**kwargs, **extra)

    def missing(self) -> list[str]:
        return [m for m in self.requires if not available(m)]

    def load(self) -> Callable[..., Any]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass
class Registry:
    family: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str, target: str, summary: str, requires: tuple[str, ...] = (),
                 options: tuple[Option, ...] = ()) -> None:
        if name in self.entries:
            raise ValueError(f"{self.family} {name!r} is already registered")
        self.entries[name] = Entry(name, target, summary, requires, options)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.family} {name!r}; known {self.family}s: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, /, **kwargs: Any) -> Any:
        return self.get(name).load()(**kwargs)

    def validate(self, component: Any) -> None:
        """Check a component built in Python (not from options) against its declared options:
        every option stored on it under its keyword must be a finite number in range, a valid
        choice... — so the Python API refuses what the CLI and TOML refuse."""
        entry = self.entries.get(getattr(component, "name", ""))
        if entry is None:
            return
        for o in entry.options:
            value = getattr(component, o.keyword, _MISSING)
            if value is not _MISSING and not isinstance(value, (bool, int, float, str)) and value is not None:
                continue
            if value is not _MISSING and (o.type is not bool or isinstance(value, bool)):
                o.check(value, f"{self.family} {entry.name!r}", name=o.keyword)

    def options(self) -> list[Option]:
        """Every option of the family, each key once (entries sharing a key share its spec)."""
        seen: dict[str, Option] = {}
        for e in self.entries.values():
            for o in e.options:
                seen.setdefault(o.key, o)
        return list(seen.values())


def check_declared(options: dict[str, Option], key: str, value: Any, where: str, *, required: bool = True) -> Any:
    """``value`` checked against the declaration ``options[key]`` (a one-line
    :class:`~negmine.core.errors.ConfigError` naming ``where`` and the option otherwise); ``None`` is
    refused unless ``required=False`` (then it means "not set" and is returned as is)."""
    if value is None and required:
        raise ConfigError(f"{where}: option {key} needs a value ({options[key].help}), got None")
    return options[key].check(value, where, name=key)


def parse_declared_list(options: dict[str, Option], raw: str, element: str | None, flag: str) -> list[Any]:
    """The items of a comma-separated ``flag``, each checked against ``options[element]``
    (``None``: any non-empty string); an empty list (nothing to do) or a repeated item is an error."""
    spec_of_flag = options.get(flag[2:].replace("-", "_"))
    example = str(spec_of_flag.default) if spec_of_flag is not None and spec_of_flag.default else "a,b"
    items = [x.strip() for x in (raw or "").split(",") if x.strip()]
    if not items:
        raise ConfigError(f"{flag} {raw!r} names nothing; give a comma-separated list, e.g. {flag} {example}")
    if element is None:
        return items
    spec = options[element]
    out = []
    for x in items:
        value: Any = x
        if spec.type in (int, float):
            try:
                value = spec.type(x)
            except ValueError:
                raise ConfigError(f"{flag}: cannot read {x!r} as {'an integer' if spec.type is int else 'a number'}; "
                                  f"give a comma-separated list, e.g. {flag} {example}") from None
        out.append(spec.check(value, flag, name=f"{flag} item"))
    if len(set(out)) != len(out):
        raise ConfigError(f"{flag} {raw!r} names an item twice; list each once")
    return out
