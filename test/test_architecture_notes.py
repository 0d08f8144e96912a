"""notes/architecture.md's "Per-frame path" table names only functions that exist.

The table has rows ``| # | function | module | what |`` (columns found by their header, so more columns or
another order are fine). Every backticked name of the function column -- ``Class.method``, ``function``,
``Class.method(args)``, or ``.method`` (a method of the class named just before it) -- must be defined in one
of the modules that the row's module column names (backticked paths relative to ``da3_ros/``: a file
``node/da3_node.py``, a folder ``ros_io/`` or a glob ``backends/*``; a plain word such as ``rclpy`` is an
installed package, read from its source files). Names in parentheses of the module column, as in
``(-> `PixelGrid` in `tracking/pixel_grid.py`, `align_window` in `tracking/window_alignment.py`)``, must be
defined in the module written after them (``in`` / ``of``), or, with none after them, in the row's modules.

Everything is read with ``ast`` (nothing of da3_ros or ROS is imported), so this is a unit test. A method may
come from a base class (found by name among the searched modules and the package).
"""
from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "da3_ros"
NOTES = REPO / "notes" / "architecture.md"
HEADING = "Per-frame path"
NAME = re.compile(r"^\.?[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass
class Row:
    """One table row: the step, the functions, where they are, and the names placed by the module column."""

    step: str
    functions: List[str]
    modules: List[str]                 # paths relative to da3_ros/ (files, folders, globs)
    packages: List[str]                # installed packages named as plain words (e.g. rclpy)
    placed: List[Tuple[str, Optional[str]]] = field(default_factory=list)  # (name, module or None: the row's)
    unreadable: List[str] = field(default_factory=list)


def split_cells(line: str) -> List[str]:
    """The cells of a markdown table line; a ``|`` inside backticks does not split."""
    cells, cell, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += char
    return cells + [cell.strip()]


def table_lines(text: str, heading: str = HEADING) -> List[str]:
    """The lines of the first table below the heading ``heading`` (header row first), or [] if none."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(rf"^#+\s*{re.escape(heading)}\s*$", line)), None)
    if start is None:
        return []
    table: List[str] = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.lstrip().startswith("|"):
            table.append(line)
        elif table:
            break
    return table


def is_path(token: str) -> bool:
    return token.endswith((".py", "/")) or "*" in token


def function_names(cell: str) -> Tuple[List[str], List[str]]:
    """``(names, unreadable)`` of a function cell: ``(args)`` dropped, ``.m`` completed with the class before."""
    names, unreadable, last_class = [], [], None
    for token in re.findall(r"`([^`]*)`", cell):
        name = token.split("(", 1)[0].strip()
        if not NAME.match(name):
            unreadable.append(token)
            continue
        if name.startswith("."):
            if last_class is None:
                unreadable.append(token)
                continue
            name = last_class + name
        if "." in name:
            last_class = name.rsplit(".", 1)[0]
        names.append(name)
    return names, unreadable


def placed_names(group: str) -> Tuple[List[Tuple[str, Optional[str]]], List[str]]:
    """``([(name, module)], unreadable)`` of one parenthesis of a module cell: the names before a path belong to
    that path; names after the last path (or with none) belong to the row's modules (None)."""
    placed, pending, unreadable = [], [], []
    for token in re.findall(r"`([^`]*)`", group):
        if is_path(token):
            placed += [(name, token) for name in pending]
            pending = []
            continue
        names, bad = function_names(f"`{token}`")
        pending += names
        unreadable += bad
    return placed + [(name, None) for name in pending], unreadable


def module_cell(cell: str) -> Tuple[List[str], List[str], List[Tuple[str, Optional[str]]], List[str]]:
    """``(modules, packages, placed, unreadable)`` of a module cell."""
    groups = re.findall(r"\(([^()]*)\)", cell)
    outside = re.sub(r"\([^()]*\)", " ", cell)
    modules = re.findall(r"`([^`]*)`", outside)
    packages = [w for w in (part.strip() for part in re.sub(r"`[^`]*`", ",", outside).split(","))
                if re.fullmatch(r"[A-Za-z_]\w*", w)]
    placed: List[Tuple[str, Optional[str]]] = []
    unreadable = [m for m in modules if not is_path(m)]
    modules = [m for m in modules if is_path(m)]
    for group in groups:
        names, bad = placed_names(group)
        placed += names
        unreadable += bad
    return modules, packages, placed, unreadable


def parse_table(text: str) -> List[Row]:
    """The rows of the "Per-frame path" table; columns by the header names "function" and "module"."""
    lines = table_lines(text)
    if not lines:
        return []
    header = [cell.lower() for cell in split_cells(lines[0])]
    col_function, col_module = header.index("function"), header.index("module")
    col_step = header.index("#") if "#" in header else 0
    rows = []
    for line in lines[1:]:
        cells = split_cells(line)
        if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
            continue   # the separator row
        cells += [""] * (len(header) - len(cells))
        functions, bad_functions = function_names(cells[col_function])
        modules, packages, placed, bad_modules = module_cell(cells[col_module])
        rows.append(Row(cells[col_step], functions, modules, packages, placed, bad_functions + bad_modules))
    return rows


# ---- what the modules define ----

def module_files(path: str) -> List[Path]:
    """The source files a module-column path names (relative to da3_ros/): a file, a folder (recursively) or a
    glob; [] when it names nothing."""
    if "*" in path:
        return sorted(p for p in PACKAGE_DIR.glob(path) if p.suffix == ".py")
    target = PACKAGE_DIR / path
    if target.is_dir():
        return sorted(target.rglob("*.py"))
    return [target] if target.is_file() else []


def package_files(package: str) -> List[Path]:
    """The source files of an installed package, found without importing it ([] when it is not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(f for location in spec.submodule_search_locations for f in Path(location).rglob("*.py"))
    return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []


_TREES: Dict[Path, ast.Module] = {}


def tree(path: Path) -> ast.Module:
    if path not in _TREES:
        _TREES[path] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return _TREES[path]


def defined_names(body: Iterable[ast.stmt]) -> Dict[str, ast.AST]:
    """The names a module or class body defines: functions, classes, assignments (also annotated ones)."""
    found: Dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
        elif isinstance(node, ast.Assign):
            found.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = node
        elif isinstance(node, (ast.If, ast.Try)):  # definitions under `if TYPE_CHECKING:` / `try: ... except`
            found.update(defined_names(node.body))
    return found


def class_index(files: Iterable[Path]) -> Dict[str, List[ast.ClassDef]]:
    index: Dict[str, List[ast.ClassDef]] = {}
    for path in files:
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ClassDef):
                index.setdefault(node.name, []).append(node)
    return index


def class_has(cls: ast.ClassDef, attr: str, classes: Dict[str, List[ast.ClassDef]], seen: Set[str]) -> bool:
    """``attr`` defined in ``cls`` or (by name, among ``classes``) one of its bases."""
    if attr in defined_names(cls.body):
        return True
    seen = seen | {cls.name}
    for base in cls.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        if name and name not in seen and any(class_has(c, attr, classes, seen) for c in classes.get(name, [])):
            return True
    return False


def defines(files: Iterable[Path], name: str, classes: Dict[str, List[ast.ClassDef]]) -> bool:
    """``function`` / ``Class`` / ``Class.method`` (``Outer.Inner.method`` too) is defined in one of ``files``."""
    first, *rest = name.split(".")
    for path in files:
        node = defined_names(tree(path).body).get(first)
        for i, attr in enumerate(rest):
            if not isinstance(node, ast.ClassDef):
                node = None
                break
            if i == len(rest) - 1:
                node = node if class_has(node, attr, classes, set()) else None
            else:
                node = defined_names(node.body).get(attr)
        if node is not None:
            return True
    return False


def where_defined(name: str, classes: Dict[str, List[ast.ClassDef]]) -> List[str]:
    """The da3_ros modules that define ``name`` (for the failure message)."""
    return [str(p.relative_to(PACKAGE_DIR)) for p in sorted(PACKAGE_DIR.rglob("*.py")) if defines([p], name, classes)]


def row_problems(row: Row, classes: Dict[str, List[ast.ClassDef]]) -> Tuple[List[str], List[str]]:
    """``(problems, unchecked)`` of one row; unchecked: names only an uninstalled package could define."""
    problems = [f"step {row.step}: cannot read `{token}` (a name or a module path)" for token in row.unreadable]
    files: List[Path] = []
    for module in row.modules:
        found = module_files(module)
        if not found:
            problems.append(f"step {row.step}: module `{module}` does not exist under da3_ros/")
        files += found
    missing_packages = [p for p in row.packages if not package_files(p)]
    files += [f for p in row.packages for f in package_files(p)]
    unchecked = []
    for name, module in [(n, None) for n in row.functions] + row.placed:
        search = files if module is None else module_files(module)
        if defines(search, name, classes):
            continue
        if module is None and missing_packages:
            unchecked.append(f"step {row.step}: `{name}` (maybe in {', '.join(missing_packages)}, not installed)")
            continue
        named = ", ".join(row.modules + row.packages) if module is None else module
        elsewhere = where_defined(name, classes)
        problems.append(f"step {row.step}: `{name}` is defined in none of {named}"
                        + (f" (it is in {', '.join(elsewhere)})" if elsewhere else " (nor anywhere in da3_ros)"))
    return problems, unchecked


@pytest.fixture(scope="module")
def rows() -> List[Row]:
    return parse_table(NOTES.read_text(encoding="utf-8"))


def test_the_per_frame_table_is_found_and_read(rows):
    assert len(rows) >= 10, f'no "{HEADING}" table with a function and a module column in {NOTES}'
    assert all(row.functions for row in rows), [row.step for row in rows if not row.functions]
    assert all(row.modules or row.packages for row in rows), [row.step for row in rows if not row.modules]


def test_the_per_frame_table_names_only_functions_that_exist(rows):
    classes = class_index(PACKAGE_DIR.rglob("*.py"))
    problems, unchecked = [], []
    for row in rows:
        row_bad, row_unchecked = row_problems(row, classes)
        problems += row_bad
        unchecked += row_unchecked
    assert not problems, (f"notes/architecture.md, \"{HEADING}\": names that do not exist where the table says:\n  "
                          + "\n  ".join(problems))
    if unchecked:
        pytest.skip("not checked: " + "; ".join(unchecked))


def test_the_table_reader_handles_the_row_forms():
    text = ("# Notes\n\n## Per-frame path\n\nintro\n\n"
            "| # | function | module | what |\n|---|---|---|---|\n"
            "| 1 | `A._m` -> `B.take(x, y)`, `.put` | `node/a.py`, rclpy | `not_a_name` is fine here |\n"
            "| 2 | `f` / `g` | `p/m.py` (-> `C`, `D.e` in `q/n.py`, `h` of `r/`), `backends/*` (`PinholeCamera`) "
            "| w |\n"
            "\nafter\n| x | y |\n")
    first, second = parse_table(text)
    assert (first.step, first.functions, first.modules, first.packages) == \
        ("1", ["A._m", "B.take", "B.put"], ["node/a.py"], ["rclpy"])
    assert second.functions == ["f", "g"] and second.modules == ["p/m.py", "backends/*"]
    assert second.placed == [("C", "q/n.py"), ("D.e", "q/n.py"), ("h", "r/"), ("PinholeCamera", None)]
    assert not first.unreadable and not second.unreadable and second.packages == []
    assert split_cells("| a | `x|y` | b |") == ["a", "`x|y`", "b"]
    assert parse_table("## Elsewhere\n| # | function | module |\n") == []


def test_the_existence_check_finds_methods_bases_and_misplaced_names():
    classes = class_index(PACKAGE_DIR.rglob("*.py"))
    tracker, camera = module_files("tracking/tracker.py"), module_files("geometry/camera.py")
    assert defines(tracker, "WindowTracker.update", classes) and defines(camera, "PinholeCamera", classes)
    assert not defines(tracker, "WindowTracker.no_such_method", classes)
    assert not defines(tracker, "PinholeCamera", classes)
    assert defines(module_files("tracking/"), "WindowTracker.reset", classes)
    row = Row("9", ["WindowTracker.update", "PinholeCamera.no_such"], ["tracking/tracker.py"], [],
              [("WindowTracker", "geometry/camera.py")])
    problems, unchecked = row_problems(row, classes)
    assert len(problems) == 2 and not unchecked, problems
    assert "`PinholeCamera.no_such` is defined in none of tracking/tracker.py (nor anywhere" in problems[0]
    assert "`WindowTracker` is defined in none of geometry/camera.py (it is in tracking/tracker.py)" in problems[1]
