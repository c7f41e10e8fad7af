"""Registry lookups and their errors."""

import pytest

from tlnlp.registry import Registry, RegistryError


def test_register_get_and_list():
    reg: Registry[int] = Registry("method", "--method")
    reg.register("full", 1)

    @reg.register("feature_extraction")
    def fe():  # noqa: D401 - decorator form
        return 2

    assert reg.get("full") == 1 and reg.get("feature_extraction") is fe
    assert reg.names() == ["feature_extraction", "full"] and "full" in reg and len(reg) == 2


def test_unknown_name_suggests_close_match_and_lists_all():
    reg: Registry[int] = Registry("method", "--method")
    reg.register("full", 1)
    reg.register("feature_extraction", 2)
    with pytest.raises(RegistryError) as err:
        reg.get("ful")
    message = str(err.value)
    assert "'full'" in message and "--method" in message and "feature_extraction" in message


def test_duplicate_registration_is_refused():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ValueError):
        reg.register("a", 2)
