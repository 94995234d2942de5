"""The Catalog: component specs gathered from every plugin.

Duplicate names within a kind are rejected naming both providers; unknown names get a
did-you-mean. Components are created lazily from their ``"module:attr"`` targets after their
params are validated by the component's own pydantic model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import pluggy
from pydantic import BaseModel, ValidationError

from tzbench.errors import CatalogError
from tzbench.specs import ComponentSpec, DatasetSpec, LoggerSpec, LossSpec, RecognizerSpec, SRModelSpec, resolve_target

__all__ = ["Kind", "KINDS", "CatalogError", "UnknownComponentError", "Entry", "Catalog", "Clash", "find_clashes",
           "format_validation_error"]

Kind = Literal["sr-models", "recognizers", "losses", "datasets", "loggers"]

_HOOKS: dict[str, tuple[str, type[ComponentSpec]]] = {
    "sr-models": ("register_sr_models", SRModelSpec),
    "recognizers": ("register_recognizers", RecognizerSpec),
    "losses": ("register_losses", LossSpec),
    "datasets": ("register_datasets", DatasetSpec),
    "loggers": ("register_loggers", LoggerSpec),
}
KINDS: tuple[str, ...] = tuple(_HOOKS)

S = TypeVar("S", bound=ComponentSpec)



def _singular(kind: str) -> str:
    """``losses`` -> ``loss``, ``sr-models`` -> ``sr model``: for messages."""
    return (kind[:-2] if kind.endswith("sses") else kind[:-1]).replace("-", " ")


# CatalogError is defined in tzbench.errors (torch-free) and re-exported here.


class UnknownComponentError(CatalogError, KeyError):
    """An unknown component name; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[S]):
    """A spec and the plugin (entry-point name) that provided it."""

    spec: S
    plugin: str


@dataclass(frozen=True)
class Clash:
    """A component name that several plugins provide (the Catalog refuses to start with it)."""

    kind: str
    name: str
    plugins: tuple[str, ...]

    def describe(self, plugin: str) -> str:
        """The clash as seen from ``plugin``: ``sr model 'dup' also in plug_b``."""
        return f"{_singular(self.kind)} {self.name!r} also in {', '.join(p for p in self.plugins if p != plugin)}"


def find_clashes(pm: pluggy.PluginManager) -> list[Clash]:
    """Every name two or more plugins register, without building a Catalog (which raises on the
    first): ``tzbench plugins`` lists all plugins and marks these."""
    providers: dict[tuple[str, str], list[str]] = {}
    for kind, (hook_name, _) in _HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            specs = impl.function()
            for spec in specs if isinstance(specs, Iterable) else ():
                if isinstance(spec, ComponentSpec):
                    providers.setdefault((kind, spec.name), []).append(impl.plugin_name)
    return [Clash(kind, name, tuple(plugins)) for (kind, name), plugins in sorted(providers.items()) if len(plugins) > 1]


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line per failing field: ``where.field: message``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{where}.{loc}: {err['msg']}")
    return "; ".join(lines)


class Catalog:
    """Specs of every kind, collected from a plugin manager."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._entries: dict[str, dict[str, Entry[Any]]] = {}
        for kind, (hook_name, spec_type) in _HOOKS.items():
            self._entries[kind] = self._collect(kind, hook_name, spec_type)

    def _collect(self, kind: str, hook_name: str, spec_type: type[ComponentSpec]) -> dict[str, Entry[Any]]:
        hook = getattr(self.pm.hook, hook_name)
        out: dict[str, Entry[Any]] = {}
        for impl in hook.get_hookimpls():
            specs = impl.function()
            if specs is None:
                continue
            if not isinstance(specs, Iterable):
                raise CatalogError(f"plugin {impl.plugin_name!r}: {hook_name}() must return a list of specs")
            for spec in specs:
                if not isinstance(spec, spec_type):
                    raise CatalogError(
                        f"plugin {impl.plugin_name!r}: {hook_name}() returned {type(spec).__name__}, "
                        f"expected {spec_type.__name__}"
                    )
                if spec.name in out:
                    raise CatalogError(
                        f"duplicate {_singular(kind)} name {spec.name!r}: provided by plugin "
                        f"{out[spec.name].plugin!r} and by plugin {impl.plugin_name!r}"
                    )
                out[spec.name] = Entry(spec, impl.plugin_name)
        return dict(sorted(out.items()))

    def names(self, kind: str) -> list[str]:
        """Sorted component names of ``kind``."""
        return list(self._kind(kind))

    def entries(self, kind: str) -> list[Entry[Any]]:
        """All entries of ``kind``, sorted by name."""
        return list(self._kind(kind).values())

    def _kind(self, kind: str) -> dict[str, Entry[Any]]:
        if kind not in self._entries:
            raise UnknownComponentError(f"unknown component kind {kind!r}; expected one of {', '.join(KINDS)}")
        return self._entries[kind]

    def entry(self, kind: str, name: str) -> Entry[Any]:
        """The entry named ``name``; unknown names raise with a did-you-mean."""
        table = self._kind(kind)
        if name not in table:
            close = difflib.get_close_matches(name, table, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownComponentError(
                f"unknown {_singular(kind)} {name!r}.{hint} Available: {', '.join(table) or '(none)'}"
            )
        return table[name]

    def spec(self, kind: str, name: str) -> Any:
        """The spec named ``name``."""
        return self.entry(kind, name).spec

    def validate_params(self, kind: str, name: str, params: Mapping[str, Any] | None = None) -> BaseModel:
        """Validate ``params`` against the component's params model; errors name the field."""
        spec = self.spec(kind, name)
        try:
            return spec.params(**dict(params or {}))
        except ValidationError as exc:
            raise CatalogError(f"invalid params for {_singular(kind)} {name!r}: {format_validation_error(exc, name)}") from exc

    def create(self, kind: str, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Validate params, import the target lazily and construct the component."""
        validated = self.validate_params(kind, name, params)
        factory = resolve_target(self.spec(kind, name).target)
        return factory(**validated.model_dump())
