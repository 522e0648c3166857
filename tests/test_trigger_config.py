"""Trigger-mode config errors name the key at fault, and `inspection run` exits 2 with the message."""

from __future__ import annotations

import subprocess

import pytest
from line_support import CLI, write_config
from trigger_support import trigger_config

from inspection.line.config import ConfigError
from inspection.line.runner import LineRunner


def test_a_recipe_model_that_does_not_exist_is_named(tmp_path):
    cfg = trigger_config(tmp_path, plant={"recipes": {"1": {"name": "a"}, "2": {"name": "b",
                                                                             "model": str(tmp_path / "no.onnx")}}})
    with pytest.raises(ConfigError, match=r"plant\.recipes\.2\.model: .*no\.onnx: cannot read model file"):
        LineRunner(cfg)


def test_unknown_plant_keys_and_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"plant\.frame_timeout: unknown key"):
        trigger_config(tmp_path, plant={"frame_timeout": 2})
    with pytest.raises(ConfigError, match=r"plant\.buffer_depth: Input should be greater than or equal to 1"):
        trigger_config(tmp_path, plant={"buffer_depth": 0})


def test_inspection_run_refuses_trigger_mode_on_a_folder(tmp_path):
    (tmp_path / "imgs").mkdir()
    cfg = write_config(tmp_path / "station.toml", f'kind = "folder"\npath = "{tmp_path / "imgs"}"',
                       extra="\n[plant]\nenabled = true\n")
    proc = subprocess.run([*CLI, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "plant.enabled: trigger mode needs a live source" in proc.stderr and "'folder'" in proc.stderr
