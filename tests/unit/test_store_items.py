"""The RightsTable's models, split one module per aggregate, still behave as one table."""

import importlib
import pkgutil

import rightsdesk.store.items as items
from rightsdesk.store.items.table import _Item, _TableMeta, bind_table


def _all_models():
    for module in pkgutil.iter_modules(items.__path__):
        importlib.import_module(f"{items.__name__}.{module.name}")
    found = [_Item]
    for model in found:
        found.extend(model.__subclasses__())
    return found


def test_every_model_has_a_connection_of_its_own():
    """An inherited connection carries another model's indexes: a GSI1 query would fail on _Item's."""
    models = _all_models()
    assert len(models) > 15, "the check sees the models"
    assert all("_connection" in model.__dict__ for model in models)


def test_binding_reaches_models_loaded_before_and_after(monkeypatch):
    original = (_TableMeta.table_name, _TableMeta.region)
    models = _all_models()
    try:
        bind_table("a-table-of-its-own", "eu-west-1")
        assert {model.Meta.table_name for model in models} == {"a-table-of-its-own"}

        class LoadedLater(_Item):
            class Meta(_TableMeta):
                pass

        assert (LoadedLater.Meta.table_name, LoadedLater.Meta.region) == ("a-table-of-its-own", "eu-west-1")
    finally:
        bind_table(*original)
