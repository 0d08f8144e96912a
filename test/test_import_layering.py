"""Dependencies between the subpackages of da3_ros point one way, and the ROS-free core never imports ROS.

Intended layering (notes/architecture.md, "Package layering"); a package may import only packages of a
LOWER layer (never one of its own layer, never one above):

    0  geometry, artifact,     camera model and transforms; the exported-model contract (sidecar, capabilities,
       tools                   errors, precisions, ref-view names, graph I/O names); standalone launch / RViz
                               config helpers (import nothing of da3_ros)
    1  model, synthetic,       the PyTorch DA3 network; the synthetic ground-truth world;
       tracking, tf_tree,      keyframes / window alignment / scale; the ROS-free TF tree (TransformBuffer),
       camera_models           which imports geometry only; raw (distorted) cameras and their
                               rectification into a pinhole camera (numpy + OpenCV)
    2  export, loop            writes artefacts (ONNX, fp16/int8 rewrites, TensorRT engines) from a model;
                               loop closure: keyframe descriptor search, verification, gtsam pose graph, map files
    3  backends                runs artefacts behind one interface + the factory (torch, onnxruntime,
                               tensorrt, oracle); the artefact check (runs two backends)
    4  pipeline                the per-frame path, ROS-free
    5  ros_io                  ROS message <-> numpy
    6  node                    the ROS node: parameters, I/O, threading
    7  demo                    player / recorder / report around the node
    8  cli                     entry points: may use everything

Inside ``pipeline`` and ``node`` the modules are ordered too: the table of test/module_layers.py gives each
module a layer, and a module imports only modules of its own package with a LOWER layer; every module must
be in that table (the failure names the line to add).

The walk parses every module under da3_ros/ with ``ast`` (imports at module level and inside
functions, absolute and relative, and ``importlib.import_module("...")`` with a literal name), so it
sees the lazy imports that a run of the test suite would never execute.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

import pytest
from module_layers import MODULE_LAYERS

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "da3_ros"
ROOT = "da3_ros"

LAYERS: Tuple[Tuple[str, ...], ...] = (
    ("geometry", "artifact", "tools"),
    ("model", "synthetic", "tracking", "tf_tree", "camera_models"),
    ("export", "loop"),
    ("backends",),
    ("pipeline",),
    ("ros_io",),
    ("node",),
    ("demo",),
    ("cli",),
)
LAYER_OF = {pkg: i for i, names in enumerate(LAYERS) for pkg in names}
ROS_FREE = ("artifact", "geometry", "tools", "model", "synthetic", "tracking", "tf_tree", "camera_models", "export",
            "loop", "backends", "pipeline")
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


# ---- the module order inside pipeline/ and node/ (test/module_layers.py) ----

TABLE_FILE = "test/module_layers.py"
INIT = "__init__"
#: an import as found: (imported module of the same package, "da3_ros/pkg/x.py:LINE")
SiblingImports = Dict[str, List[Tuple[str, str]]]


def package_units(package: str) -> Dict[str, Path]:
    """The modules of da3_ros/<package>/ by name: ``x.py`` -> "x", a subpackage folder ``x/`` -> "x"
    (its ``__init__.py``); the package's own ``__init__.py`` is not one."""
    root = PACKAGE_DIR / package
    units = {p.stem: p for p in root.glob("*.py") if p.stem != INIT}
    units.update({p.name: p / "__init__.py" for p in root.iterdir() if (p / "__init__.py").is_file()})
    return units


def sibling_of(name: str, package: str, units: Iterable[str]) -> Optional[str]:
    """The unit of ``da3_ros.<package>`` that the imported name ``name`` is in: a module's name, INIT for a
    name defined in the package's __init__ (``from da3_ros.pipeline import WindowProcessor``), None for a
    name outside the package (and for the bare package, which every ``from . import x`` also yields)."""
    parts = name.split(".")
    if parts[:2] != [ROOT, package] or len(parts) == 2:
        return None
    return parts[2] if parts[2] in units else INIT


def sibling_imports(package: str) -> SiblingImports:
    """{unit: [(imported unit of the same package, "da3_ros/package/x.py:LINE"), ...]} over every file of
    ``da3_ros/<package>/`` (imports inside a unit, such as a subpackage's own modules, are left out)."""
    root = PACKAGE_DIR / package
    units = package_units(package)
    found: SiblingImports = {name: [] for name in units}
    found[INIT] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        src = rel[0] if len(rel) > 1 else (INIT if path.stem == INIT else path.stem)
        module, is_package = module_name(path)
        for target, line in imported_modules(path.read_text(), module, is_package):
            dst = sibling_of(target, package, units)
            hit = (dst, f"{path.relative_to(PACKAGE_DIR.parent)}:{line}")
            if dst is not None and dst != src and hit not in found[src]:
                found[src].append(hit)
    return found


def module_summary(path: Path) -> str:
    """The first line of a module's docstring (for the comment of its table line), at most 80 characters."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or "WHAT IT IS"
    line = doc.strip().splitlines()[0].rstrip(".")
    return line if len(line) <= 80 else line[:77] + "..."


def table_comments() -> Dict[str, str]:
    """{module: comment} of the table lines in test/module_layers.py."""
    text = (Path(__file__).resolve().parent / "module_layers.py").read_text()
    return {m.group(1): m.group(2).strip() for m in re.finditer(r'^\s*"(\w+)":\s*\d+,\s*#(.*)$', text, re.M)}


def table_line(name: str, layer: object, comment: str) -> str:
    return f'        "{name}": {layer},  # {comment}'


def suggested_layers(imports: SiblingImports, layers: Dict[str, int]) -> Dict[str, Optional[int]]:
    """A layer for every unit the table lacks: one above the highest layer it imports (0: it imports none),
    placing a missing module it imports first; None when missing modules import each other in a cycle."""
    missing = [u for u in imports if u != INIT and u not in layers]
    placed: Dict[str, Optional[int]] = {}

    def place(unit: str, visiting: Set[str]) -> Optional[int]:
        if unit in layers:
            return layers[unit]
        if unit in placed:
            return placed[unit]
        if unit in visiting or unit not in imports:
            return None
        below = [place(dst, visiting | {unit}) for dst, _ in imports[unit] if dst != INIT]
        placed[unit] = None if None in below else 1 + max(below, default=-1)
        return placed[unit]

    for unit in missing:
        place(unit, set())
    return {unit: placed[unit] for unit in missing}


def order_problems(package: str, imports: SiblingImports, layers: Dict[str, int]) -> List[str]:
    """Every import of a module of ``package`` that is not of a LOWER layer of the table (or that imports the
    package's __init__), as "file:line: ..." naming both modules and their layers."""
    problems = []
    for src, hits in sorted(imports.items()):
        for dst, where in hits:
            if src == INIT or src not in layers:
                continue
            if dst == INIT:
                problems.append(f"{where}: {src} imports a name of da3_ros/{package}/__init__.py: import it from the "
                                f"module that defines it")
            elif dst in layers and layers[dst] >= layers[src]:
                problems.append(f'{where}: {src} (layer {layers[src]}) imports {dst} (layer {layers[dst]}); a module '
                                f'imports only LOWER layers: raise "{src}" above {layers[dst]} in {TABLE_FILE} (and '
                                f'whatever imports {src} above it), or drop the import')
    return problems


def implied_layers(imports: SiblingImports) -> Optional[Dict[str, int]]:
    """The lowest layers today's imports allow (the longest import chain below each unit), or None on a cycle."""
    edges = {src: [dst for dst, _ in hits if dst != INIT] for src, hits in imports.items() if src != INIT}
    if find_cycle(edges):
        return None
    return {unit: layer for unit, layer in suggested_layers(imports, {}).items() if layer is not None}


@pytest.fixture(scope="module", params=sorted(MODULE_LAYERS))
def ordered_package(request):
    return request.param, sibling_imports(request.param)


def test_every_module_of_an_ordered_package_is_in_the_module_table(ordered_package):
    package, imports = ordered_package
    layers, units = MODULE_LAYERS[package], package_units(package)
    missing = suggested_layers(imports, layers)
    stale = sorted(set(layers) - set(units))
    lines = [table_line(name, "?" if layer is None else layer, module_summary(units[name]))
             for name, layer in sorted(missing.items(), key=lambda item: (item[1] is None, item[1] or 0, item[0]))]
    message = []
    if missing:
        message.append(f"modules of da3_ros/{package}/ missing from {TABLE_FILE}; add to MODULE_LAYERS"
                       f'["{package}"] the line(s) (layer = one above the highest layer it imports; edit the '
                       f"comment):\n" + "\n".join(lines)
                       + ("\n(?: these modules import each other in a cycle; break it first)"
                          if None in missing.values() else ""))
    if stale:
        message.append(f"{TABLE_FILE} names modules that da3_ros/{package}/ no longer has; remove from "
                       f'MODULE_LAYERS["{package}"] the line(s) of: ' + ", ".join(f'"{name}"' for name in stale))
    assert not message, "\n".join(message)


def test_modules_import_only_lower_layers_of_their_package(ordered_package):
    package, imports = ordered_package
    problems = order_problems(package, imports, MODULE_LAYERS[package])
    if not problems:
        return
    implied = implied_layers(imports)
    comments, units = table_comments(), package_units(package)
    if implied is None:
        edges = {src: [dst for dst, _ in hits if dst != INIT] for src, hits in imports.items() if src != INIT}
        hint = "the modules import each other in a cycle: " + " -> ".join(find_cycle(edges))
    else:
        lines = [table_line(name, layer, comments.get(name) or module_summary(units[name]))
                 for name, layer in sorted(implied.items(), key=lambda item: (item[1], item[0]))]
        hint = f'a MODULE_LAYERS["{package}"] consistent with today\'s imports (lowest layers):\n' + "\n".join(lines)
    pytest.fail(f"imports against the module order of da3_ros/{package}/ ({TABLE_FILE}):\n  "
                + "\n  ".join(problems) + "\n" + hint)


def test_the_module_walk_finds_imports_inside_each_ordered_package(ordered_package):
    """Guards against a walker that silently finds nothing: each ordered package has intra-package imports."""
    package, imports = ordered_package
    assert any(imports.values()), f"no import between modules of da3_ros/{package}/ found"


def test_the_module_order_check_names_the_offending_import_and_the_line_to_add():
    imports: SiblingImports = {
        "low": [], "mid": [("low", "p/mid.py:3")], "top": [("mid", "p/top.py:7"), ("low", "p/top.py:8")],
        "same": [("mid", "p/same.py:2")], "up": [("top", "p/up.py:4")], "facade_user": [(INIT, "p/facade_user.py:9")],
        "new": [("top", "p/new.py:1")], "newer": [("new", "p/newer.py:5")], INIT: [("top", "p/__init__.py:1")],
    }
    layers = {"low": 0, "mid": 1, "top": 2, "same": 1, "up": 1, "facade_user": 0}
    problems = order_problems("p", imports, layers)
    assert len(problems) == 3, problems
    assert problems[0].startswith("p/facade_user.py:9: facade_user imports a name of da3_ros/p/__init__.py")
    assert problems[1].startswith("p/same.py:2: same (layer 1) imports mid (layer 1)")
    assert problems[2].startswith("p/up.py:4: up (layer 1) imports top (layer 2)")
    assert suggested_layers(imports, layers) == {"new": 3, "newer": 4}
    assert suggested_layers({"a": [("b", "a.py:1")], "b": [("a", "b.py:1")]}, {}) == {"a": None, "b": None}
    assert implied_layers({"a": [("b", "a.py:1")], "b": [("a", "b.py:1")]}) is None
    assert implied_layers(imports)["up"] == 3 and implied_layers(imports)["low"] == 0
    assert table_line("new", 3, "what") == '        "new": 3,  # what'
    units = ("window_processor", "voxel_map")
    assert sibling_of("da3_ros.pipeline.voxel_map.VoxelMap", "pipeline", units) == "voxel_map"
    assert sibling_of("da3_ros.pipeline.WindowProcessor", "pipeline", units) == INIT
    assert sibling_of("da3_ros.pipeline", "pipeline", units) is None
    assert sibling_of("da3_ros.tracking.tracker", "pipeline", units) is None
