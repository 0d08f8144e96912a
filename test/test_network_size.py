"""The network size of a camera (da3_ros.artifact.network_size) is the official DA3 rule, and its crop loss is
the pipeline's NetworkInputMapping.cropped_fraction; ``da3-export onnx --camera-size`` uses it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from da3_ros.artifact.network_size import (DEFAULT_LONG_SIDE, PATCH_SIZE, crop_loss, network_size_for_camera,
                                           parse_camera_size)
from da3_ros.cli.export_main import build_parser, main, resolve_network_size

REPO = Path(__file__).resolve().parents[1]
CAMERAS = [(640, 480), (1280, 720), (1024, 576), (848, 480)]


def _official_network_hw(width, height, long_side):
    """(H, W) of the official InputProcessor's output for a ``width`` x ``height`` uint8 image (its default
    method upper_bound_resize), via the official api module (stand-ins only for missing PIL / torchvision)."""
    pytest.importorskip("depth_anything_3")
    from da3_official_api import _official_modules

    api, _ = _official_modules()
    tensor, _, _ = api.InputProcessor()(image=[np.zeros((height, width, 3), np.uint8)], process_res=long_side,
                                        num_workers=1)
    return tuple(tensor.shape[-2:])


def test_documented_sizes():
    assert network_size_for_camera(640, 480) == (378, 504)        # INTERFACES.md
    assert network_size_for_camera(1280, 720) == (280, 504)       # 504x284 -> 280
    assert network_size_for_camera(1024, 576) == (280, 504)
    assert network_size_for_camera(848, 480) == (280, 504)        # 504x285.3 -> 285 -> 280
    assert network_size_for_camera(480, 640) == (504, 378)        # portrait
    assert network_size_for_camera(640, 480, long_side=518) == (392, 518)
    assert DEFAULT_LONG_SIDE == 504


@pytest.mark.parametrize("camera", CAMERAS + [(1920, 1080), (752, 480), (101, 99), (200, 300)])
@pytest.mark.parametrize("long_side", [504, 518, 280])
def test_equals_the_official_input_processor(camera, long_side):
    assert network_size_for_camera(*camera, long_side=long_side) == _official_network_hw(*camera, long_side)


def test_patch_size_is_the_models():
    from da3_ros.model.config import DEFAULT_PROCESS_RES
    from da3_ros.model.config import PATCH_SIZE as MODEL_PATCH

    assert PATCH_SIZE == MODEL_PATCH and DEFAULT_LONG_SIDE == DEFAULT_PROCESS_RES


def test_bad_sizes_are_refused():
    for bad in [(0, 480), (640, -1), (640.5, 480)]:
        with pytest.raises(ValueError, match="positive integer"):
            network_size_for_camera(*bad)
    with pytest.raises(ValueError, match="below 14 px"):
        network_size_for_camera(10000, 10, long_side=504)    # 504 x 0.504 -> 1 px, not a multiple of 14
    assert parse_camera_size("640x480") == (640, 480) and parse_camera_size(" 1280X720 ") == (1280, 720)
    for bad in ("640", "640x", "x480", "0x480", "-640x480", "640x480x3"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_camera_size(bad)


@pytest.mark.parametrize("camera,net", [((640, 480), (504, 378)), ((640, 480), (504, 280)), ((1280, 720), (504, 280)),
                                        ((1280, 720), (350, 196)), ((848, 480), (504, 280)), ((1024, 576), (504, 378)),
                                        ((480, 640), (504, 378)), ((101, 99), (42, 28))])
def test_crop_loss_is_the_mappings_cropped_fraction(camera, net):
    from da3_ros.pipeline.network_input import NetworkInputMapping

    expected = NetworkInputMapping(*camera, *net).cropped_fraction
    assert crop_loss(*camera, *net) == pytest.approx(expected, abs=1e-15)   # the same formula, same rounding


def test_crop_loss_numbers():
    assert crop_loss(640, 480, 504, 378) == 0.0                      # the fitted size loses nothing
    assert crop_loss(640, 480, 504, 280) == pytest.approx(1 - 280 / 378)   # 4:3 into 504x280: 25.9 % of the rows
    # 1280x720 into its fitted 504x280: covered at 504x284 (720 * 504 / 1280 = 283.5, rounded to even), 4 rows cut
    assert crop_loss(1280, 720, 504, 280) == pytest.approx(1 - 280 / 284)   # 1.4 %: the 5 % warning stays quiet
    assert crop_loss(1280, 720, 504, 378) > 0.05                     # a 4:3 engine on a 16:9 camera warns


def test_export_cli_camera_size(capsys):
    parser = build_parser()
    args = parser.parse_args(["onnx", "--checkpoint", "c", "--views", "2", "--camera-size", "640x480",
                              "--output", "x.onnx"])
    assert resolve_network_size(parser, args) == (378, 504)
    args = parser.parse_args(["onnx", "--checkpoint", "c", "--views", "2", "--camera-size", "1280x720",
                              "--long-side", "518", "--output", "x.onnx"])
    assert resolve_network_size(parser, args) == network_size_for_camera(1280, 720, 518) == (294, 518)
    args = parser.parse_args(["onnx", "--checkpoint", "c", "--views", "2", "--height", "280", "--width", "504",
                              "--output", "x.onnx"])
    assert resolve_network_size(parser, args) == (280, 504)


@pytest.mark.parametrize("flags,message", [
    (["--camera-size", "640x480", "--height", "280"], "--camera-size conflicts with --height/--width"),
    (["--camera-size", "640x480", "--width", "504"], "--camera-size conflicts with --height/--width"),
    (["--height", "280"], "give both --height and --width"),
    ([], "give --height and --width, or --camera-size"),
    (["--height", "280", "--width", "504", "--long-side", "518"], "--long-side needs --camera-size"),
    (["--camera-size", "640by480"], "WIDTHxHEIGHT"),
])
def test_export_cli_conflicts_exit_2_with_the_reason(flags, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["onnx", "--checkpoint", "c", "--views", "2", "--output", "x.onnx", *flags])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_importing_the_rule_loads_no_runtime():
    """The node names the fitting export size in a warning: the module must not pull in torch / onnx."""
    code = ("import sys, da3_ros.artifact.network_size; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'cv2', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
