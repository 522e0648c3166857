"""The [plant] config section: off by default, every key checked, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.plant.config import PlantConfigError, PlantSection, load_plant, parse_plant


def test_defaults_are_off_with_one_recipe_and_depth_8():
    cfg = parse_plant({}, "t")
    assert not cfg.enabled and not cfg.modbus.enabled and not cfg.opcua.enabled
    assert cfg.buffer_depth == 8 and cfg.numbered() == {1: cfg.recipes["1"]}
    assert not cfg.opcua.allow_anonymous and not cfg.opcua.allow_unencrypted


@pytest.mark.parametrize(("data", "named"), [
    ({"opcua": {"port": 70000}}, "plant.opcua.port: Input should be less than or equal to 65535"),
    ({"modbus": {"prot": 5020}}, "plant.modbus.prot: unknown key"),
    ({"buffer_depth": 0}, "plant.buffer_depth: Input should be greater than or equal to 1"),
    ({"recipes": {"one": {"name": "x"}}}, "plant.recipes.one: a recipe is named by its number"),
    ({"recipes": {"1": {"name": "x", "part_type": "gear"}}}, "plant.recipes.1.part_type: Input should be"),
    ({"initial_recipe": 4}, "plant.initial_recipe: 4 is not one of [1]"),
    ({"opcua": {"enabled": True}}, "plant.opcua.users: give at least one user"),
    ({"opcua": {"users": [{"name": "plc"}]}}, "plant.opcua.users.0: Value error, user 'plc': give exactly one"),
])
def test_bad_settings_name_their_key(data, named):
    with pytest.raises(PlantConfigError) as err:
        parse_plant(data, "station.toml")
    message = str(err.value).replace("Value error, ", "")
    assert message.startswith("station.toml: ")
    assert named.replace("Value error, ", "") in message


def test_toml_section_with_overrides(tmp_path: Path, monkeypatch):
    path = tmp_path / "station.toml"
    path.write_text('[station]\nsite = "ignored here"\n\n[plant]\nenabled = true\nbuffer_depth = 4\n\n'
                    '[plant.recipes.1]\nname = "flange"\n'
                    '[plant.recipes.2]\nname = "plate"\npart_type = "knurled_plate"\n'
                    '\n[plant.opcua]\nenabled = true\nusers = [{ name = "plc", password_env = "PLANT_TEST_PW" }]\n')
    cfg = load_plant(path, {"modbus.enabled": True, "modbus.port": 1502, "opcua.port": None})
    assert cfg.enabled and cfg.buffer_depth == 4 and cfg.modbus.enabled and cfg.modbus.port == 1502
    assert cfg.opcua.port == 4840 and sorted(cfg.numbered()) == [1, 2]
    with pytest.raises(PlantConfigError, match=r"\$PLANT_TEST_PW, which is not set"):
        cfg.opcua.users[0].secret()
    monkeypatch.setenv("PLANT_TEST_PW", "pw")
    assert cfg.opcua.users[0].secret() == "pw"


def test_secrets_are_not_printed():
    cfg = parse_plant({"opcua": {"users": [{"name": "plc", "password": "hunter2"}]}}, "t")
    assert "hunter2" not in repr(cfg) and "hunter2" not in cfg.model_dump_json()


def test_missing_or_broken_file(tmp_path: Path):
    with pytest.raises(PlantConfigError, match="no such config file"):
        load_plant(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[plant\n")
    with pytest.raises(PlantConfigError, match="not valid TOML"):
        load_plant(bad)


def test_the_line_config_can_include_it():
    from pydantic import BaseModel

    class Station(BaseModel):
        plant: PlantSection = PlantSection()

    assert Station().plant.enabled is False
    assert Station.model_validate({"plant": {"enabled": True}}).plant.enabled
