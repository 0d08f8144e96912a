"""da3_ros/tools/rviz_config.py and the committed RViz configs (ROS-free): the files equal the generator's
output (one camera: rviz/da3.rviz; rigs), show one PointCloud2 and one depth Image per camera on the node's
topics in the namespace asked for, and name only classes and QoS values that rviz_default_plugins
(Jazzy / Kilted) has; setup.py installs them."""
from pathlib import Path

import pytest
import yaml

from da3_ros.tools import rviz_config
from da3_ros.tools.rviz_config import CAMERA_COLORS, camera_rviz_config, main, render, rig_rviz_config

REPO = Path(__file__).resolve().parents[1]
COMMITTED = {"da3_rig_stereo.rviz": ["left", "right"], "da3_rig_ring3.rviz": ["cam0", "cam1", "cam2"]}
#: display / tool / view classes of rviz_default_plugins' plugins_description.xml (ros2/rviz jazzy) used here
KNOWN_CLASSES = {"rviz_default_plugins/" + c for c in ("Grid", "TF", "PointCloud2", "Odometry", "Path", "Image",
                                                       "Interact", "MoveCamera", "Select", "FocusCamera", "Measure",
                                                       "Orbit", "Pose")}
#: the topics of one camera's config, relative to the node's namespace
CAMERA_TOPICS = ["depth", "confidence", "points", "map_points", "path", "pose"]


def _displays(config, cls):
    return [d for d in config["Visualization Manager"]["Displays"] if d["Class"] == f"rviz_default_plugins/{cls}"]


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_committed_configs_equal_the_generator(name):
    cameras = COMMITTED[name]
    text = (REPO / "rviz" / name).read_text()
    regenerate = rviz_config.command_line(cameras, "/da3", "odom", False) + f" --output rviz/{name}"
    assert text == render(cameras, "/da3", "odom"), f"regenerate: {regenerate}"
    assert yaml.safe_load(text) == rig_rviz_config(cameras, "/da3", "odom")


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_one_cloud_and_one_depth_image_per_camera(name):
    cameras = COMMITTED[name]
    config = yaml.safe_load((REPO / "rviz" / name).read_text())
    clouds = _displays(config, "PointCloud2")
    assert [c["Topic"]["Value"] for c in clouds] == [f"/da3/{cam}/points" for cam in cameras] + ["/da3/map_points"]
    per_camera = clouds[:len(cameras)]
    assert all(c["Color Transformer"] == "FlatColor" for c in per_camera)
    assert len({c["Color"] for c in per_camera}) == len(cameras)          # distinct colours
    assert clouds[-1]["Color Transformer"] == "RGB8"
    assert [i["Topic"]["Value"] for i in _displays(config, "Image")] == [f"/da3/{cam}/depth" for cam in cameras]
    assert [o["Topic"]["Value"] for o in _displays(config, "Odometry")] == ["/da3/odometry"]
    assert _displays(config, "Odometry")[0]["Covariance"] == {"Value": False}
    assert [p["Topic"]["Value"] for p in _displays(config, "Path")] == ["/da3/path"]
    assert len(_displays(config, "TF")) == 1
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "odom"
    classes = {d["Class"] for d in manager["Displays"]} | {t["Class"] for t in manager["Tools"]}
    classes.add(manager["Views"]["Current"]["Class"])
    assert classes <= KNOWN_CLASSES, classes - KNOWN_CLASSES
    for display in manager["Displays"]:
        if "Topic" in display:   # the node publishes reliable, keep-last 5 (da3_node OUTPUT_QOS)
            assert display["Topic"]["Reliability Policy"] == "Reliable" and display["Topic"]["Depth"] == 5
        assert display["Enabled"] is True and isinstance(display["Name"], str)
    names = [d["Name"] for d in manager["Displays"]]
    assert len(names) == len(set(names))


def _topics(config):
    return [d["Topic"]["Value"] for d in config["Visualization Manager"]["Displays"] if "Topic" in d]


def test_committed_single_camera_config_equals_the_generator():
    text = (REPO / "rviz" / "da3.rviz").read_text()
    regenerate = rviz_config.command_line([], "/da3", "odom", False) + " --output rviz/da3.rviz"
    assert text == render([], "/da3", "odom"), f"regenerate: {regenerate}"
    config = yaml.safe_load(text)
    assert config == camera_rviz_config("/da3", "odom")
    assert _topics(config) == [f"/da3/{t}" for t in CAMERA_TOPICS]
    manager = config["Visualization Manager"]
    classes = {d["Class"] for d in manager["Displays"]} | {t["Class"] for t in manager["Tools"]}
    assert classes <= KNOWN_CLASSES, classes - KNOWN_CLASSES
    for display in manager["Displays"]:
        if "Topic" in display:
            assert display["Topic"]["Reliability Policy"] == "Reliable" and display["Topic"]["Depth"] == 5
    assert [d["Name"] for d in manager["Displays"] if not d["Enabled"]] == ["Confidence"]


@pytest.mark.parametrize("namespace, prefix", [("/robot1/da3", "/robot1/da3"), ("robot1/da3/", "/robot1/da3"),
                                               ("/", ""), ("", "")])
def test_every_topic_follows_the_namespace(namespace, prefix):
    """The issue's bug: da3.rviz named /da3/... whatever the node's namespace. Every topic of both kinds of config
    is the node's namespace + the node's relative topic name, and nothing else."""
    assert _topics(camera_rviz_config(namespace)) == [f"{prefix}/{t}" for t in CAMERA_TOPICS]
    rig = _topics(rig_rviz_config(["left", "right"], namespace))
    assert sorted(rig) == sorted([f"{prefix}/{c}/{t}" for c in ("left", "right") for t in ("points", "depth")]
                                 + [f"{prefix}/{t}" for t in ("map_points", "odometry", "path")])
    assert f"namespace {prefix or '/'}," in render([], namespace, "odom").splitlines()[0]


def test_generator_options_and_errors(tmp_path, capsys):
    config = rig_rviz_config(["a", "b", "c"] + [f"x{i}" for i in range(7)], namespace="robot/da3",
                             fixed_frame="map", rgb=True)
    clouds = _displays(config, "PointCloud2")
    assert clouds[0]["Topic"]["Value"] == "/robot/da3/a/points" and len(clouds) == 11
    assert all(c["Color Transformer"] == "RGB8" and "Color" not in c for c in clouds)
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == "map"
    assert _displays(rig_rviz_config(["a"], namespace="/"), "PointCloud2")[0]["Topic"]["Value"] == "/a/points"
    many = _displays(rig_rviz_config([f"c{i}" for i in range(10)]), "PointCloud2")
    assert [c["Color"] for c in many[:10]] == [CAMERA_COLORS[i % len(CAMERA_COLORS)] for i in range(10)]
    for cameras, reason in (([], "at least one camera"), (["l", "l"], "listed twice"),
                            (["/l"], "not a relative ROS namespace")):
        with pytest.raises(ValueError, match=reason):
            rig_rviz_config(cameras)
    with pytest.raises(ValueError, match="fixed frame must be a TF frame id"):
        camera_rviz_config("/da3", "/odom")
    assert main(["--namespace", "/r2", "--output", str(tmp_path / "one.rviz")]) == 0
    assert (tmp_path / "one.rviz").read_text() == render([], "/r2")
    out = tmp_path / "rig.rviz"
    assert main(["--cameras", "left", "right", "--output", str(out)]) == 0
    assert out.read_text() == render(["left", "right"])
    assert main(["--cameras", "front", "--namespace", "/r", "--fixed-frame", "map", "--rgb"]) == 0
    printed = capsys.readouterr().out
    assert printed == render(["front"], "/r", "map", rgb=True)
    assert printed.startswith("# RViz2 config") and "--cameras front --namespace /r --fixed-frame map --rgb" in printed
    with pytest.raises(SystemExit):
        main(["--cameras", "a", "a"])


def test_setup_installs_every_rviz_config():
    setup = (REPO / "setup.py").read_text()
    assert '("share/" + package_name + "/rviz", glob("rviz/*.rviz"))' in setup
    assert {p.name for p in (REPO / "rviz").glob("*.rviz")} >= set(COMMITTED) | {"da3.rviz"}
