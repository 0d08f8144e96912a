"""Test-suite wide settings.

Unit / DDS split: a test module that starts a node process, creates an rclpy context or talks DDS
declares ``pytestmark = pytest.mark.ros``; every other module is a ROS-free unit test (ROS message
types are fine, rclpy is not). ``pytest -m "not ros"`` runs the unit tests without even importing the
DDS modules (so rclpy is never loaded), ``pytest -m ros`` the DDS tests. The split is enforced at
collection: a module without the marker fails to collect when it imports rclpy (directly, or first in
this process through da3_ros) or a DDS helper of this folder, or when a test asks for a ROS fixture.

DDS isolation: every pytest run uses its own random ROS_DOMAIN_ID and keeps discovery on the
loopback interface, so parallel runs (and other machines) never see each other's topics. These
variables are set at import time, before any test calls rclpy.init(), and are inherited by the
subprocesses the tests start.
"""
import ast
import itertools
import os
import random
import sys
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")
assert 1 <= int(os.environ["ROS_DOMAIN_ID"]) <= 100   # a random domain of this run: parallel runs never meet

# make the helper modules of this folder importable as plain modules (ros_harness, ros_fixtures, ...)
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DA3_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

import pytest  # noqa: E402

ROS_MARK = "ros"
# the fixtures below that need rclpy and DDS
ROS_FIXTURES = frozenset({"ros_node", "process_launcher"})
# rclpy, and the helper modules of this folder that import it or start da3_node: importing one makes a DDS test
ROS_IMPORTS = frozenset({"rclpy", "ros_harness", "node_fixtures", "fixture_publisher", "tf_fixture_publisher"})
# the other markers of setup.cfg (a mark expression may combine them with `ros`)
OTHER_MARKS = ("slow", "linter", "flake8", "pep257")


def _module_tree(path: Path) -> ast.Module:
    return ast.parse(path.read_bytes(), filename=str(path))


def _declares_ros_mark(tree: ast.Module) -> bool:
    """True when the module assigns ``pytestmark`` a value that contains ``pytest.mark.ros``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                for t in node.targets):
            if f"mark.{ROS_MARK}" in ast.unparse(node.value):
                return True
    return False


def _ros_violations(tree: ast.Module) -> list[str]:
    """Why a module (without the ``ros`` marker) is a DDS test: its ROS imports and ROS fixture arguments."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = {a.arg for a in node.args.args + node.args.kwonlyargs} & ROS_FIXTURES
            found += [f"line {node.lineno}: {node.name}() uses the ROS fixture {a}" for a in sorted(args)]
            continue
        else:
            continue
        found += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in ROS_IMPORTS]
    return found


def _mark_expression_selects_ros(config) -> bool:
    """False when the ``-m`` expression deselects every test marked ``ros`` (e.g. ``-m "not ros"``)."""
    markexpr = (config.getoption("markexpr", "") or "").strip()
    if not markexpr:
        return True
    try:
        from _pytest.mark.expression import Expression

        expression = Expression.compile(markexpr)
    except Exception:  # an unknown pytest version or a bad expression: pytest reports the latter itself
        return True
    for flags in itertools.product((False, True), repeat=len(OTHER_MARKS)):
        marks = {ROS_MARK, *(m for m, on in zip(OTHER_MARKS, flags) if on)}
        if expression.evaluate(lambda name, **kwargs: name in marks):
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config):
    """With ``-m "not ros"`` the DDS modules are not even imported (a unit run never loads rclpy)."""
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_") \
            and not _mark_expression_selects_ros(config) and _declares_ros_mark(_module_tree(collection_path)):
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Fail the collection of a module that is a DDS test without ``pytestmark = pytest.mark.ros``."""
    rclpy_loaded_before = "rclpy" in sys.modules
    report = yield
    if not isinstance(collector, pytest.Module) or not report.passed:
        return report
    tree = _module_tree(collector.path)
    if _declares_ros_mark(tree):
        return report
    problems = _ros_violations(tree)
    if not rclpy_loaded_before and "rclpy" in sys.modules:
        problems.append("importing the module loads rclpy")
    if problems:
        report.outcome = "failed"
        report.longrepr = (f"{collector.path.name} is a DDS test but lacks `pytestmark = pytest.mark.{ROS_MARK}` "
                           "(see test/conftest.py):\n  " + "\n  ".join(problems))
        report.result = []
    return report


def _require_ros_mark(request) -> None:
    """A ROS fixture requested (maybe indirectly) by a test that is not marked ``ros`` fails it."""
    if request.node.get_closest_marker(ROS_MARK) is None:
        pytest.fail(f"{request.node.nodeid} uses a ROS fixture but is not marked `{ROS_MARK}` "
                    f"(add `pytestmark = pytest.mark.{ROS_MARK}` to its module)", pytrace=False)


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
def ros_node(request):
    """An rclpy node in its own context (see ros_harness.RosTestNode)."""
    _require_ros_mark(request)
    from ros_harness import RosTestNode

    with RosTestNode("da3_test_client") as harness:
        yield harness


@pytest.fixture
def process_launcher(request, tmp_path):
    """Start processes that are terminated (SIGINT, then SIGKILL) when the test ends."""
    _require_ros_mark(request)
    from ros_harness import ProcessLauncher

    launcher = ProcessLauncher(tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="session")
def reduced_onnx(tmp_path_factory) -> Path:
    """A reduced multi-view DA3 exported to ONNX: N=3 views at 112x154, ref_view first."""
    from model_fixtures import export_reduced_onnx

    return export_reduced_onnx(tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="session")
def reduced_split_onnx(tmp_path_factory) -> Path:
    """The same reduced model (N=3, 112x154, ref_view first) as a ``--split`` export: encoder + window graph."""
    from model_fixtures import export_reduced_onnx

    return export_reduced_onnx(tmp_path_factory.mktemp("onnx_split"), split=True)


@pytest.fixture(scope="session")
def reduced_descriptor_split_onnx(tmp_path_factory) -> Path:
    """The same reduced model as a ``--split --with-descriptor`` export: the loop-closure descriptor from the
    per-view encoder, cached with each view's tokens."""
    from model_fixtures import export_reduced_onnx

    return export_reduced_onnx(tmp_path_factory.mktemp("onnx_split_desc"), split=True, with_descriptor=True)
