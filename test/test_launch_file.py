"""launch/da3.launch.py without launch_ros (not installable here): its arguments, read with ast, name real
node parameters, and the robot-integration ones (base_frame, ...) are exposed."""
import ast
from pathlib import Path

from da3_ros.node.parameters import DEFAULTS

LAUNCH = Path(__file__).resolve().parents[1] / "launch" / "da3.launch.py"


def _launch_arguments(tree):
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            names.append(node.args[0].value)
    return names


def test_launch_arguments_override_real_parameters():
    tree = ast.parse(LAUNCH.read_text())
    declared = _launch_arguments(tree)
    overrides = next(ast.literal_eval(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                     and any(getattr(t, "id", "") == "STRING_OVERRIDES" for t in n.targets))
    assert {"base_frame", "scale_source", "pose_source", "odometry_frame", "publish_tf"} <= set(declared)
    for name in (*overrides, "publish_tf"):
        assert name in declared and name in DEFAULTS, name
    assert len(declared) == len(set(declared))
