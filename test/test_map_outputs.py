"""The node side of loop closure without DDS: ``map_frame -> odom_frame`` from the processor's correction
(``PoseOutputs.map_edge``), the map_frame rules, ``~/save_map``'s folder and the flattened /diagnostics keys."""
from pathlib import Path

import numpy as np
import pytest

from da3_ros.geometry.transforms import invert_transform
from da3_ros.node.map_saving import loop_diagnostics, map_save_root, save_map_answer
from da3_ros.node.parameters import DEFAULTS, check_settings
from da3_ros.node.pose_outputs import PoseOutputs
from da3_ros.node.robot_frames import T_BODY_OPTICAL
from da3_ros.synthetic.robot import SyntheticRobot
from da3_ros.tf_tree.transform_buffer import TransformBuffer
from da3_ros.tracking.base_trajectory import T_odom_base_from_camera

ROBOT = SyntheticRobot()
NS = 1_000_000_000
SETTINGS = dict(odom_frame="odom", base_frame="base_link", camera_frame="", odometry_frame="wheel_odom",
                publish_tf=True, scale_source="odometry", pose_source="none", path_max_length=100,
                map_frame="map", loop_closure=True)


def _rigid(yaw_deg: float, t) -> np.ndarray:
    a = np.radians(yaw_deg)
    T = np.eye(4)
    T[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    T[:3, 3] = t
    return T


def _outputs(settings=SETTINGS, scale_expected=True) -> PoseOutputs:
    buf = TransformBuffer(cache_time_s=60.0)
    for parent, child, T in ROBOT.static_transforms:
        buf.set_transform(parent, child, 0, T, static=True)
    buf.set_transform("wheel_odom", "base_link", 1000 * NS, np.eye(4))
    outputs = PoseOutputs(settings, lambda: buf, scale_expected=scale_expected)
    return outputs


def test_map_edge_is_the_loop_correction_of_the_base_pose():
    outputs = _outputs()
    assert outputs.map_edge(np.eye(4), 2.0) is None   # before the first frame: no odom yet
    outputs.inputs("camera_optical", 1000 * NS)        # the first frame: odom = the base there
    assert outputs.map_edge(None, 2.0) is None          # loop closure inactive
    s = 2.5                                             # metres per odometry unit
    T_map_vis = _rigid(7.0, [0.3, -0.2, 0.05])          # the processor's correction, odometry units
    parent, child, T_map_odom = outputs.map_edge(T_map_vis, s)
    assert (parent, child) == ("map", "odom")
    # the base pose in the map two ways: the ROS chain map -> odom -> base, and the corrected visual camera pose
    # taken to the base as BaseOdometry does (same formula, applied to T_map_vis @ T_vis_cam); float64 rounding only
    T_vis_cam = _rigid(-20.0, [1.2, 0.1, -0.4])
    T_odom_base = T_odom_base_from_camera(T_vis_cam, ROBOT.T_base_cam, s)
    T_map_base = T_odom_base_from_camera(T_map_vis @ T_vis_cam, ROBOT.T_base_cam, s)
    np.testing.assert_allclose(T_map_odom @ T_odom_base, T_map_base, atol=1e-12)
    # scale not known yet, a scale source configured: identity (as the correction edge), never odometry units
    np.testing.assert_array_equal(outputs.map_edge(T_map_vis, None)[2], np.eye(4))
    # the timer's one list: the correction edge odom -> wheel_odom first, then map -> odom (its parent)
    edges = outputs.republished_edges(T_map_vis, s)
    assert [(p, c) for p, c, _ in edges] == [("odom", "wheel_odom"), ("map", "odom")]
    np.testing.assert_allclose(outputs.map_points_transform(), ROBOT.T_base_cam, atol=0)


def test_camera_only_map_edge_without_a_scale_is_in_odometry_units():
    settings = dict(SETTINGS, base_frame="", scale_source="none", odometry_frame="odom")
    outputs = PoseOutputs(settings, lambda: TransformBuffer(), scale_expected=False)

    class Frame:   # the WindowOutcome fields PoseOutputs.messages reads (an untracked first frame)
        T_odom_cam = None
        reset = reinitialised = False

    from builtin_interfaces.msg import Time
    outputs.messages(Frame(), Time(sec=1000), "camera_optical", "odom")   # camera-only odom: REP 103 axes
    T_map_vis = _rigid(0.0, [0.0, 0.0, 1.0])   # one unit along the optical axis (forward)
    _, _, T = outputs.map_edge(T_map_vis, None)
    np.testing.assert_allclose(T, T_BODY_OPTICAL @ T_map_vis @ invert_transform(T_BODY_OPTICAL), atol=1e-15)
    np.testing.assert_allclose(T[:3, 3], [1.0, 0.0, 0.0], atol=1e-15)   # forward is +x in odom (REP 103)
    assert outputs.republished_edges(T_map_vis, None)[0][:2] == ("map", "odom")


@pytest.mark.parametrize("overrides, words", [
    ({"map_frame": ""}, "map_frame must not be empty"),
    ({"map_frame": "/map"}, "plain frame id"),
    ({"map_frame": "odom"}, "map_frame and odom_frame are both 'odom'"),
    ({"map_frame": "base_link"}, "map_frame and base_frame are both 'base_link'"),
    ({"map_frame": "wheel_odom"}, "map_frame and odometry_frame are both 'wheel_odom'"),
])
def test_map_frame_refusals_name_the_reason(overrides, words):
    values = {**DEFAULTS, **SETTINGS, **overrides}
    problems = check_settings(values)
    assert len(problems) == 1 and words in problems[0], problems


def test_map_frame_defaults_pass_and_an_unused_odometry_frame_is_not_checked():
    assert check_settings({**DEFAULTS, **SETTINGS}) == []
    assert check_settings(dict(DEFAULTS)) == []
    # no robot odometry read: odometry_frame is unused, so it cannot clash with the map
    assert check_settings({**DEFAULTS, "odometry_frame": "map"}) == []


def test_map_save_root(tmp_path):
    assert map_save_root("", {"ROS_HOME": str(tmp_path)}) == tmp_path / "da3_maps"
    assert map_save_root("", {}) == Path.home() / ".ros" / "da3_maps"
    assert map_save_root(" ~/maps ", {"ROS_HOME": str(tmp_path)}) == Path.home() / "maps"
    assert map_save_root(str(tmp_path / "m"), {}) == tmp_path / "m"
    ok, message = save_map_answer(None, tmp_path)
    assert not ok and "not configured" in message


def test_loop_diagnostics_flattens_the_rejections():
    stats = {"loop_closure": "on", "loop_candidates": 5, "loop_accepted": 1,
             "loop_rejected": {"too_few_inliers": 3, "scale": 1}, "last_optimisation_ms": 4.5,
             "last_optimisation_keyframes": 12, "map_keyframes": 12, "relocalised": True, "loaded_map": "/m/1"}
    values = loop_diagnostics(stats)
    assert values["loop_rejected"] == 4 and values["loop_rejected_scale"] == 1
    assert values["loop_rejected_too_few_inliers"] == 3 and values["tracking_relocalised"] is True
    assert {k: values[k] for k in ("loop_closure", "loop_candidates", "map_keyframes", "loaded_map")} == {
        "loop_closure": "on", "loop_candidates": 5, "map_keyframes": 12, "loaded_map": "/m/1"}
