"""Test-suite wide settings.

DDS isolation: every pytest run uses its own random ROS_DOMAIN_ID and keeps discovery on the
loopback interface, so parallel runs (and other machines) never see each other's topics. These
variables are set at import time, before any test calls rclpy.init(), and are inherited by the
subprocesses the tests start.
"""
import os
import random
import sys
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")

# make the helper modules of this folder importable as plain modules (ros_harness, ros_fixtures, ...)
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DA3_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with the real footage (robot_unitree.mp4, soh_000.png, ...); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real footage folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real footage folder, which may be absent (callers fall back to synthetic data)."""
    return SHARED_DATA


@pytest.fixture
def ros_node():
    """An rclpy node in its own context (see ros_harness.RosTestNode)."""
    from ros_harness import RosTestNode

    with RosTestNode("da3_test_client") as harness:
        yield harness


@pytest.fixture
def process_launcher(tmp_path):
    """Start processes that are terminated (SIGINT, then SIGKILL) when the test ends."""
    from ros_harness import ProcessLauncher

    launcher = ProcessLauncher(tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="session")
def reduced_onnx(tmp_path_factory) -> Path:
    """A reduced multi-view DA3 exported to ONNX: N=3 views at 112x154, ref_view first."""
    from model_fixtures import export_reduced_onnx

    return export_reduced_onnx(tmp_path_factory.mktemp("onnx"))
