"""Dependencies between the subpackages of da3_ros point one way, and the ROS-free core never imports ROS.

Intended layering (notes/architecture.md, "Package layering"); a package may import only packages of a
LOWER layer (never one of its own layer, never one above):

    0  geometry, artifact,     camera model and transforms; the exported-model contract (sidecar, capabilities,
       tools                   errors, precisions, ref-view names, graph I/O names); standalone launch / RViz
                               config helpers (import nothing of da3_ros)
    1  model, synthetic,       the PyTorch DA3 network; the synthetic ground-truth world;
       tracking, tf_tree       keyframes / window alignment / scale; the ROS-free TF tree (TransformBuffer),
                               which imports geometry only
    2  export                  writes artefacts (ONNX, fp16/int8 rewrites, TensorRT engines) from a model
    3  backends                runs artefacts behind one interface + the factory (torch, onnxruntime,
                               tensorrt, oracle); the artefact check (runs two backends)
    4  pipeline                the per-frame path, ROS-free
    5  ros_io                  ROS message <-> numpy
    6  node                    the ROS node: parameters, I/O, threading
    7  demo                    player / recorder / report around the node
    8  cli                     entry points: may use everything

The walk parses every module under da3_ros/ with ``ast`` (imports at module level and inside
functions, absolute and relative, and ``importlib.import_module("...")`` with a literal name), so it
sees the lazy imports that a run of the test suite would never execute.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "da3_ros"
ROOT = "da3_ros"

LAYERS: Tuple[Tuple[str, ...], ...] = (
    ("geometry", "artifact", "tools"),
    ("model", "synthetic", "tracking", "tf_tree"),
    ("export",),
    ("backends",),
    ("pipeline",),
    ("ros_io",),
    ("node",),
    ("demo",),
    ("cli",),
)
LAYER_OF = {pkg: i for i, names in enumerate(LAYERS) for pkg in names}
ROS_FREE = ("artifact", "geometry", "tools", "model", "synthetic", "tracking", "tf_tree", "export", "backends",
            "pipeline")
#: packages whose modules may import only these third-party modules (besides the standard library)
THIRD_PARTY_ONLY = {"geometry": ("numpy",), "tf_tree": ("numpy",)}
#: packages that may import only these da3_ros packages (stricter than their layer)
DA3_ROS_ONLY = {"tf_tree": ("geometry",)}
#: top-level modules that belong to ROS (a name ending in _msgs/_srvs/_interfaces is a message package)
ROS_MODULES = ("rclpy", "rcl_interfaces", "rosidl_runtime_py", "rosidl_parser", "tf2_ros", "tf2_py",
               "message_filters", "cv_bridge", "builtin_interfaces", "rosbag2_py", "launch", "launch_ros",
               "ament_index_python", "rmw", "rcl")


def module_name(path: Path) -> Tuple[str, bool]:
    """da3_ros/x/y.py -> ("da3_ros.x.y", False); da3_ros/x/__init__.py -> ("da3_ros.x", True)."""
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(source: str, module: str, is_package: bool) -> List[Tuple[str, int]]:
    """Every (absolute module name, line) imported anywhere in ``source`` (the module ``module``)."""
    found: List[Tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                if node.level - 1 > len(base) - 1:
                    raise ValueError(f"{module}:{node.lineno}: relative import beyond the top-level package")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            # ``from da3_ros import backends`` / ``from .. import node``: the names may be modules
            found.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.args[0].value, node.lineno))
    return found


def subpackage(name: str) -> Optional[str]:
    """``da3_ros.backends.factory`` -> "backends"; "da3_ros" (or a name defined in its __init__, such as
    ``__version__``) -> ROOT; outside da3_ros -> None."""
    parts = name.split(".")
    if parts[0] != ROOT:
        return None
    if len(parts) > 1 and ((PACKAGE_DIR / parts[1] / "__init__.py").is_file()
                           or (PACKAGE_DIR / f"{parts[1]}.py").is_file()):
        return parts[1]
    return ROOT


def walk_package() -> Tuple[Dict[str, Dict[str, List[str]]], Dict[str, List[str]]]:
    """-> (graph {src package: {dst package: ["module:line", ...]}}, external {package: ["module:line imports X"]})."""
    graph: Dict[str, Dict[str, List[str]]] = defaultdict(lambda: defaultdict(list))
    external: Dict[str, List[str]] = defaultdict(list)
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        module, is_package = module_name(path)
        src = subpackage(module)
        for target, line in imported_modules(path.read_text(), module, is_package):
            dst = subpackage(target)
            if dst is None:
                external[src].append(f"{module}:{line} imports {target}")
            elif dst != src:
                where = f"{module}:{line}"
                if where not in graph[src][dst]:
                    graph[src][dst].append(where)
    return graph, external


def find_cycle(edges: Dict[str, Iterable[str]]) -> Optional[List[str]]:
    """A cycle ``[a, b, ..., a]`` of the directed graph, or None."""
    state: Dict[str, int] = {}   # 1 = on the current path, 2 = done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def is_ros_module(name: str) -> bool:
    top = name.split(".")[0]
    return top in ROS_MODULES or top.endswith(("_msgs", "_srvs", "_interfaces"))


@pytest.fixture(scope="module")
def walked():
    return walk_package()


def test_no_import_cycle_between_packages(walked):
    graph, _ = walked
    cycle = find_cycle({src: list(dsts) for src, dsts in graph.items()})
    if cycle:
        steps = [f"{a} -> {b} ({', '.join(graph[a][b][:3])})" for a, b in zip(cycle, cycle[1:])]
        pytest.fail("import cycle between da3_ros packages: " + " -> ".join(cycle) + "\n  " + "\n  ".join(steps))


def test_every_package_is_in_the_layering(walked):
    packages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    packages |= {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    assert packages - set(LAYER_OF) == set(), "add the new package to LAYERS (and notes/architecture.md)"
    assert set(LAYER_OF) - packages == set(), "LAYERS names a package that does not exist"


def test_dependencies_point_down_the_layering(walked):
    graph, _ = walked
    upward = [f"{src} (layer {LAYER_OF[src]}) -> {dst} (layer {LAYER_OF[dst]}): {', '.join(where[:3])}"
              for src, dsts in sorted(graph.items()) if src != ROOT
              for dst, where in sorted(dsts.items()) if dst != ROOT and LAYER_OF[dst] >= LAYER_OF[src]]
    assert not upward, "imports against the layering:\n  " + "\n  ".join(upward)
    assert ROOT not in graph, f"da3_ros/__init__.py must import no subpackage: {dict(graph.get(ROOT, {}))}"


def test_ros_free_packages_never_import_ros(walked):
    _, external = walked
    bad = [hit for pkg in ROS_FREE for hit in external.get(pkg, []) if is_ros_module(hit.rsplit(" ", 1)[1])]
    assert not bad, "ROS imports in the ROS-free core:\n  " + "\n  ".join(bad)


def test_geometry_and_tf_tree_import_numpy_only(walked):
    """geometry is the NumPy core (no torch, not even inside a function): the torch pose encoding, quaternions
    and ray-map solver live beside the network in model/. The TF tree is NumPy (+ threading) too."""
    import sys

    _, external = walked
    bad = [hit for pkg, allowed in THIRD_PARTY_ONLY.items() for hit in external.get(pkg, [])
           if hit.rsplit(" ", 1)[1].split(".")[0] not in allowed + tuple(sys.stdlib_module_names)]
    assert not bad, "imports beyond numpy and the standard library:\n  " + "\n  ".join(bad)


def test_tf_tree_sits_just_above_geometry(walked):
    """The TF tree imports geometry only (not model / synthetic / tracking of its layer, nothing above)."""
    graph, _ = walked
    bad = [f"{pkg} -> {dst}: {', '.join(where[:3])}" for pkg, allowed in DA3_ROS_ONLY.items()
           for dst, where in sorted(graph.get(pkg, {}).items()) if dst not in allowed]
    assert not bad, "imports beyond the allowed packages:\n  " + "\n  ".join(bad)
    assert "geometry" in graph["tf_tree"] and "tf_tree" in graph["ros_io"]


def test_the_walk_sees_lazy_relative_and_dynamic_imports():
    """The walker itself: imports inside functions, relative ones, ``from pkg import module``, importlib."""
    source = ("import numpy\n"
              "from .camera import PinholeCamera\n"
              "def f():\n"
              "    from ..node import backend_setup\n"
              "    from da3_ros import cli\n"
              "    import rclpy.node\n"
              "    importlib.import_module('sensor_msgs.msg')\n")
    found = {name for name, _ in imported_modules(source, "da3_ros.geometry.fake", False)}
    assert {"numpy", "da3_ros.geometry.camera", "da3_ros.node", "da3_ros.node.backend_setup", "da3_ros.cli",
            "rclpy.node", "sensor_msgs.msg"} <= found
    assert {subpackage(n) for n in found} >= {"geometry", "node", "cli", None}
    assert is_ros_module("rclpy.node") and is_ros_module("sensor_msgs.msg") and not is_ros_module("numpy")
    package_init = {name for name, _ in imported_modules("from . import factory\n", "da3_ros.backends", True)}
    assert "da3_ros.backends.factory" in package_init


def test_cycle_finder_names_the_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["x"]}) == ["x", "x"]


def test_the_real_graph_has_the_known_edges(walked):
    """Guards against a walker that silently finds nothing: edges that exist only as lazy / relative imports."""
    graph, _ = walked
    assert "export" in graph["backends"]     # artifact_check.run_check imports export lazily
    assert "backends" in graph["node"]       # node/backend_setup.py: relative import
    assert "synthetic" in graph["backends"]  # the oracle backend
    assert "artifact" in graph["model"]      # ref-view names


def test_the_contract_and_the_backends_import_no_runtime():
    """Importing the contract, the backend interface/factory and the engine builder loads neither torch,
    ONNX (Runtime), TensorRT nor rclpy: each backend imports its runtime when it is constructed."""
    import subprocess
    import sys

    code = ("import sys, da3_ros.artifact, da3_ros.backends, da3_ros.export.tensorrt_build; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt', 'rclpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE_DIR.parent).stdout.strip()
    assert out == "[]"
