"""The plugin manager factory.

There is no module-level plugin manager: each call builds a fresh one from the ``tzbench``
entry-point group, so tests and embedding applications can hold several independent views
(e.g. with plugins disabled) without global state.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import pluggy

from tzbench import hookspecs

__all__ = ["PluginInfo", "PluginFailure", "get_plugin_manager", "disabled_from_env", "plugin_infos", "plugin_failures",
           "plugin_disabled", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "tzbench"


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its entry-point name, module and the distribution providing it."""

    name: str
    module: str
    dist: str
    version: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported; the CLI reports it and carries on."""

    name: str
    module: str
    error: str


@dataclass
class _Loaded:
    infos: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    skipped: list[PluginInfo] = field(default_factory=list)


def disabled_from_env() -> list[str]:
    """Plugin (or distribution) names listed in ``TZBENCH_DISABLE_PLUGINS`` (comma separated)."""
    raw = os.environ.get("TZBENCH_DISABLE_PLUGINS", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def get_plugin_manager(
    disable: Iterable[str] = (),
    extra_plugins: Iterable[ModuleType | object] = (),
    use_entry_points: bool = True,
) -> pluggy.PluginManager:
    """Build a plugin manager with every ``tzbench`` entry point loaded.

    ``disable`` (plus ``TZBENCH_DISABLE_PLUGINS``) names entry points to skip, or distributions
    (as pip names them: ``tzbench-mymodel``) whose entry points are all skipped. A plugin that
    raises on import is recorded in ``pm.tzbench_failures`` and skipped, so one broken
    third-party package never takes the CLI down. ``extra_plugins`` registers in-process
    plugin objects (tests, notebooks).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    loaded = _Loaded(disabled=sorted(set(disable) | set(disabled_from_env())))
    off = {_normalize(n) for n in loaded.disabled}
    if use_entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist
            info = PluginInfo(name=ep.name, module=ep.value, dist=dist.metadata["Name"] if dist is not None else "?",
                              version=dist.version if dist is not None else "?")
            if ep.name in loaded.disabled or (dist is not None and _normalize(info.dist) in off):
                loaded.skipped.append(info)
                continue
            try:
                module = importlib.import_module(ep.value.partition(":")[0])
                pm.register(module, name=ep.name)
            except Exception as exc:  # noqa: BLE001 - any import-time failure is the plugin's fault
                loaded.failures.append(PluginFailure(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
                continue
            loaded.infos.append(info)
    for i, plugin in enumerate(extra_plugins):
        if pm.is_registered(plugin):
            # Already loaded through its entry point (the plugin is installed): once is enough,
            # and pluggy would refuse the second name.
            continue
        name = getattr(plugin, "__name__", None) or f"in-process-{i}"
        pm.register(plugin, name=name)
        loaded.infos.append(PluginInfo(name=name, module=name, dist="(in-process)", version="-"))
    pm.tzbench_loaded = loaded  # type: ignore[attr-defined]
    return pm


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """The plugins loaded into ``pm``."""
    return list(pm.tzbench_loaded.infos)  # type: ignore[attr-defined]


def plugin_failures(pm: pluggy.PluginManager) -> list[PluginFailure]:
    """The plugins that failed to import into ``pm``."""
    return list(pm.tzbench_loaded.failures)  # type: ignore[attr-defined]


def plugin_disabled(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """The installed plugins that ``disable`` (or ``TZBENCH_DISABLE_PLUGINS``) kept out of ``pm``."""
    return list(pm.tzbench_loaded.skipped)  # type: ignore[attr-defined]


def _normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``TZBench_MyModel`` is ``tzbench-mymodel``."""
    return re.sub(r"[-_.]+", "-", name).lower()
