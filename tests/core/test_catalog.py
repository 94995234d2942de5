"""Catalog behaviour: duplicates, did-you-mean, params validation, broken and disabled plugins."""

from __future__ import annotations

import types
from importlib import metadata

import pytest
from pydantic import BaseModel, ConfigDict

import tzbench
from tzbench import SRModelSpec, hookimpl
from tzbench.catalog import Catalog, CatalogError, UnknownComponentError
from tzbench.plugins import get_plugin_manager, plugin_failures, plugin_infos


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = 8


def _plugin(name: str, model: str) -> types.ModuleType:
    mod = types.ModuleType(name)

    @hookimpl
    def register_sr_models() -> list[SRModelSpec]:
        return [SRModelSpec(name=model, target="torch.nn:Identity", params=_P)]

    mod.register_sr_models = register_sr_models  # type: ignore[attr-defined]
    return mod


def test_builtin_components_are_listed() -> None:
    assert {"bicubic", "srcnn"} <= set(tzbench.list_sr_models())
    assert "ppocr" in tzbench.list_recognizers()
    assert "l2" in tzbench.list_losses()


def test_duplicate_names_name_both_plugins() -> None:
    pm = get_plugin_manager(use_entry_points=False, extra_plugins=[_plugin("plug_a", "dup"), _plugin("plug_b", "dup")])
    with pytest.raises(CatalogError) as err:
        Catalog(pm)
    assert "plug_a" in str(err.value) and "plug_b" in str(err.value) and "'dup'" in str(err.value)


def test_duplicate_of_builtin_is_rejected() -> None:
    pm = get_plugin_manager(extra_plugins=[_plugin("intruder", "srcnn")])
    with pytest.raises(CatalogError, match="intruder"):
        Catalog(pm)


def test_unknown_name_did_you_mean() -> None:
    with pytest.raises(UnknownComponentError, match="Did you mean 'srcnn'"):
        tzbench.create_sr_model("srcn")


def test_params_are_validated_before_construction() -> None:
    cat = Catalog(get_plugin_manager(use_entry_points=False, extra_plugins=[_plugin("p", "toy")]))
    with pytest.raises(CatalogError, match=r"toy\.widht"):
        cat.create("sr-models", "toy", {"widht": 3})
    with pytest.raises(CatalogError, match=r"toy\.width"):
        cat.create("sr-models", "toy", {"width": "wide"})


def test_bad_spec_name_rejected() -> None:
    with pytest.raises(ValueError, match="slug"):
        SRModelSpec(name="My Model", target="a:b")


def test_broken_plugin_is_reported_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.entry_points

    def fake(**kw):  # type: ignore[no-untyped-def]
        eps = list(real(**kw))
        if kw.get("group") == "tzbench":
            eps.append(metadata.EntryPoint("broken", "tzbench_no_such_module_xyz.plugin", "tzbench"))
        return eps

    monkeypatch.setattr(metadata, "entry_points", fake)
    pm = get_plugin_manager()
    broken = [f for f in plugin_failures(pm) if f.name == "broken"]
    assert len(broken) == 1
    assert "tzbench_no_such_module_xyz" in broken[0].error
    assert "broken" not in {p.name for p in plugin_infos(pm)}
    assert "srcnn" in Catalog(pm).names("sr-models")  # the rest still works


def test_disable_plugin_by_argument_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = get_plugin_manager(disable=["baselines"])
    assert "baselines" not in {p.name for p in plugin_infos(pm)}
    assert "srcnn" not in Catalog(pm).names("sr-models")
    monkeypatch.setenv("TZBENCH_DISABLE_PLUGINS", "recognizers, baselines")
    names = {p.name for p in plugin_infos(get_plugin_manager())}
    assert not {"recognizers", "baselines"} & names


def test_plugin_manager_is_a_factory() -> None:
    assert get_plugin_manager() is not get_plugin_manager()


def test_an_installed_plugin_passed_again_in_process_is_loaded_once() -> None:
    """docs/plugins.md builds a catalog with extra_plugins=[plugin]; once installed, that must still work."""
    import tzbench_baselines.plugin

    catalog = Catalog(get_plugin_manager(extra_plugins=[tzbench_baselines.plugin]))
    assert catalog.entry("sr-models", "srcnn").plugin == "baselines"
    assert [p.name for p in plugin_infos(catalog.pm)].count("baselines") == 1
