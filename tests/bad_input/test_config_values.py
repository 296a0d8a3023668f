"""Issue #22 item 7: method parameters are checked against their Config annotations when the
config is built, before any clip: a bad value or an unknown key (from the YAML or from
``--set``) is one error line naming where it came from, the key, the value and what is allowed."""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from tests.bad_input.conftest import FAST, assert_user_error, run_cli
from vfr_bench.config import ConfigError, to_dataclass
from vfr_bench.methods import build_method, method_names


@dataclass
class Demo:
    flag: bool = True
    count: int = 1
    weight: float = 0.5
    name: str = "a"
    mode: Literal["fast", "slow"] = "fast"
    limit: Optional[int] = None
    size: tuple[int, int] = (1, 2)
    steps: tuple[float, ...] = ()


@pytest.mark.parametrize("key,value,allowed", [
    ("flag", "yes", "true or false"), ("flag", 1, "true or false"),
    ("count", 2.5, "an integer"), ("count", True, "an integer"), ("count", "3", "an integer"),
    ("weight", "high", "a number"), ("weight", False, "a number"),
    ("name", 3, "a string"),
    ("mode", "medium", "one of 'fast', 'slow'"),
    ("limit", "none", "an integer or null"),
    ("size", [1], "a list of 2 items (an integer, an integer)"), ("size", 3, "a list of 2 items"),
    ("steps", ["x"], "a list, each item a number"),
])
def test_values_are_checked_against_the_annotation(key, value, allowed):
    with pytest.raises(ConfigError) as e:
        to_dataclass(Demo, {key: value}, "my.yaml params")
    msg = str(e.value)
    assert msg.startswith(f"my.yaml params: {key}={value!r} is not allowed") and allowed in msg


def test_good_values_are_converted_where_yaml_is_looser():
    cfg = to_dataclass(Demo, {"weight": 1, "size": [3, 4], "steps": [1, 2.5], "limit": None, "mode": "slow"}, "f")
    assert cfg.weight == 1.0 and isinstance(cfg.weight, float)  # w=1 and w=1.0 are one config
    assert cfg.size == (3, 4) and cfg.steps == (1.0, 2.5) and cfg.mode == "slow"
    assert to_dataclass(Demo, {"limit": 7}, "f").limit == 7


def test_override_is_named_as_the_override_not_the_file():
    with pytest.raises(ConfigError, match=r"^--set: mode='x' is not allowed"):
        to_dataclass(Demo, {"mode": "slow"}, "my.yaml params", overrides={"mode": "x"})
    with pytest.raises(ConfigError, match=r"^--set: unknown key\(s\) colour; valid: count, flag"):
        to_dataclass(Demo, {}, "my.yaml params", overrides={"colour": 1})


@pytest.mark.parametrize("name", method_names())
def test_every_shipped_yaml_passes_its_own_check(name):
    cfg = build_method(name).config
    hints = typing.get_type_hints(type(cfg))
    for key, tp in hints.items():  # every Literal default is one of its choices
        if typing.get_origin(tp) is Literal:
            assert getattr(cfg, key) in typing.get_args(tp)


def test_literals_match_the_methods_own_lists():
    from vfr_bench.methods.dicface.mixture import MIXTURE_MODES
    from vfr_bench.methods.dicface.restorer import PATHS, DicFaceConfig
    from vfr_bench.methods.dicface.windows import WINDOW_MODES
    from vfr_bench.methods.flair.restorer import TASKS, FlairConfig
    d, f = typing.get_type_hints(DicFaceConfig), typing.get_type_hints(FlairConfig)
    assert typing.get_args(d["window"]) == WINDOW_MODES and typing.get_args(d["mixture"]) == MIXTURE_MODES
    assert typing.get_args(d["path"]) == PATHS
    assert typing.get_args(f["task"]) == ("auto", *TASKS)


# --- the user commands ---------------------------------------------------------------------

def test_bench_set_mode_foo_fails_before_restoring(tiny_split, tmp_path):
    out = tmp_path / "res"
    p = run_cli("bench", "--split", tiny_split, "--out", out, *FAST, "--set", "mode=foo")
    assert_user_error(p, "--set for lq-upsample", "mode='foo' is not allowed", "'bicubic'", "'nearest'")
    assert not out.exists()  # no clip restored, no row


def test_bench_bad_value_keeps_previous_rows(tiny_split, tmp_path):
    out = tmp_path / "res"
    assert run_cli("bench", "--split", tiny_split, "--out", out, *FAST).returncode == 0
    board = (out / "leaderboard.csv").read_bytes()
    assert_user_error(run_cli("bench", "--split", tiny_split, "--out", out, *FAST, "--set", "mode=3"),
                      "mode=3 is not allowed")
    assert (out / "leaderboard.csv").read_bytes() == board


def _frames(tmp_path):
    import cv2
    import numpy as np
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(2):
        cv2.imwrite(str(d / f"{i:05d}.png"), np.full((64, 64, 3), 128, np.uint8))
    return d


@pytest.mark.parametrize("override,words", [
    ("mode=foo", ["--set for lq-upsample", "mode='foo' is not allowed", "'bicubic'"]),
    ("foo=1", ["--set for lq-upsample", "unknown key(s) foo", "valid: mode"]),
])
def test_restore_rejects_bad_overrides(tmp_path, override, words):
    """`restore --aligned` on crops of the output size never interpolated, so mode=foo was ignored."""
    out = tmp_path / "o.mp4"
    p = run_cli("restore", "--method", "lq-upsample", "--input", _frames(tmp_path), "--output", out,
                "--aligned", "--device", "cpu", "--no-progress", "--set", override)
    assert_user_error(p, *words)
    assert not out.exists()


def test_restore_dicface_window_choices_before_weights(tmp_path):
    p = run_cli("restore", "--method", "dicface", "--input", _frames(tmp_path), "--output", tmp_path / "o.mp4",
                "--aligned", "--set", "window=middle")
    assert_user_error(p, "window='middle' is not allowed", "'official', 'center'")


def test_bad_value_in_a_method_yaml_names_the_file(tmp_path, tiny_split, monkeypatch):
    d = tmp_path / "methods"
    d.mkdir()
    (d / "my-up.yaml").write_text("entry: vfr_bench.methods.baselines:LQUpsample\nparams:\n  mode: cubic\n")
    monkeypatch.setenv("VFR_BENCH_METHODS", str(d))
    p = run_cli("bench", "--split", tiny_split, "--out", tmp_path / "res", "--method", "my-up", "--metrics", "PSNR",
                "--no-wandb", "--no-progress")
    assert_user_error(p, f"{d / 'my-up.yaml'} params: mode='cubic' is not allowed", "'bicubic'")
