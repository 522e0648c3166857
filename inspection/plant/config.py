"""The ``[plant]`` section of the station config: trigger mode, recipes, the Modbus TCP and OPC UA servers.
Off by default; validated with every key checked (unknown keys refused), and errors name the key, e.g.
``plant.opcua.port: Input should be less than or equal to 65535``. The line config can include
:class:`PlantSection` as its ``plant`` field; :func:`load_plant` reads the section from a TOML file alone.

Example::

    [plant]
    enabled = true
    buffer_depth = 8

    [plant.recipes.1]
    name = "flange"
    model = "models/demo_flange.onnx"

    [plant.modbus]
    enabled = true
    port = 5020

    [plant.opcua]
    enabled = true
    port = 4840
    users = [{ name = "line-plc", password_env = "INSPECTION_OPCUA_PASSWORD" }]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from inspection.errors import InspectionError
from inspection.plant.handshake import DEFAULT_DEPTH
from inspection.toml_files import apply_overrides, read_toml


class PlantConfigError(InspectionError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecipeSection(_Strict):
    name: str = Field(min_length=1, max_length=64)
    model: Path | None = Field(default=None, description="ONNX model; none = the shipped demo model of part_type")
    part_type: Literal["flange", "knurled_plate"] = Field(default="flange", description="the simulated camera's "
                                                          "part (plant serve); with no model, picks the demo model")


class ModbusSection(_Strict):
    enabled: bool = False
    host: str = Field(default="127.0.0.1", description="bind address: the PLC network only (Modbus has no security)")
    port: int = Field(default=5020, ge=1, le=65535)


class OpcUaUser(_Strict):
    name: str = Field(min_length=1)
    password: SecretStr | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_password(self):
        if (self.password is None) == (self.password_env is None):
            raise ValueError(f"user {self.name!r}: give exactly one of password, password_env")
        return self

    def secret(self) -> str:
        if self.password is not None:
            return self.password.get_secret_value()
        value = os.environ.get(self.password_env or "")
        if not value:
            raise PlantConfigError(f"plant.opcua.users: the password of {self.name!r} is read from "
                                   f"${self.password_env}, which is not set")
        return value


class OpcUaSection(_Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=4840, ge=1, le=65535)
    cert_dir: Path = Field(default=Path("runs/opcua-pki"), description="server key and self-signed certificate, "
                                                                       "created on first start")
    users: list[OpcUaUser] = Field(default_factory=list)
    allow_anonymous: bool = False
    allow_unencrypted: bool = Field(default=False, description="also offer a None endpoint (bench use only)")
    trusted_clients: Path | None = Field(default=None, description="folder of trusted client certificates; "
                                                                   "none = any client with a valid certificate")

    @model_validator(mode="after")
    def _someone_may_connect(self):
        if self.enabled and not self.users and not self.allow_anonymous:
            raise ValueError("plant.opcua.users: give at least one user (or set allow_anonymous = true)")
        return self


class PlantSection(_Strict):
    enabled: bool = False
    buffer_depth: int = Field(default=DEFAULT_DEPTH, ge=1, le=64)
    recipes: dict[str, RecipeSection] = Field(default_factory=lambda: {"1": RecipeSection(name="flange")})
    initial_recipe: int | None = None
    frame_timeout_s: float = Field(default=1.0, gt=0, le=60, description="line runner: how long a trigger waits "
                                   "for a frame captured after it before it is answered with a CAMERA error")
    modbus: ModbusSection = ModbusSection()
    opcua: OpcUaSection = OpcUaSection()

    @model_validator(mode="after")
    def _recipes(self):
        for key in self.recipes:
            if not key.isdigit() or not 0 <= int(key) <= 65535:
                raise ValueError(f"plant.recipes.{key}: a recipe is named by its number, 0 to 65535")
        if not self.recipes:
            raise ValueError("plant.recipes: give at least one recipe")
        if self.initial_recipe is not None and str(self.initial_recipe) not in self.recipes:
            raise ValueError(f"plant.initial_recipe: {self.initial_recipe} is not one of "
                             f"{sorted(self.numbered())}")
        return self

    def numbered(self) -> dict[int, RecipeSection]:
        return {int(k): v for k, v in self.recipes.items()}


def parse_plant(data: dict, source: str) -> PlantSection:
    """Validate the ``[plant]`` table (``data`` is its content); PlantConfigError names each bad key."""
    try:
        return PlantSection.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            key = ".".join(["plant", *(str(p) for p in e["loc"])])
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].replace("Value error, ", "")
            problems.append(msg if msg.startswith("plant.") else f"{key}: {msg}")
        raise PlantConfigError(f"{source}: " + "; ".join(problems)) from None


def load_plant(path: Path | None, overrides: dict[str, object] | None = None) -> PlantSection:
    """The ``[plant]`` section of a TOML file (other sections are left to their own readers), or the
    defaults when ``path`` is None; ``overrides`` (dotted keys under plant, from flags) win over the file."""
    plant: object = {}
    if path is not None:
        plant = read_toml(path, PlantConfigError).get("plant", {})
        if not isinstance(plant, dict):
            raise PlantConfigError(f"{path}: plant: must be a table ([plant])")
    assert isinstance(plant, dict)
    apply_overrides(plant, overrides)
    return parse_plant(plant, str(path) if path else "plant settings")
