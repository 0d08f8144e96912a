"""The synthetic robot's world over DDS, as a separate process (robot-integration tests, issue 13).

Publishes, RELIABLE (conftest's DDS isolation is inherited from the test):

* ``/tf_static`` (latched): the camera mount ``base_link -> camera_link -> camera_optical``;
* ``/tf``: the wheel odometry ``wheel_odom -> base_link`` at its 50 Hz stamps (``--odometry-frame``
  renames the parent), always ``--odom-lead-s`` ahead of the image being published so that a lookup
  at the image stamp can interpolate;
* ``<ns>/image`` (rgb8) + ``<ns>/camera_info`` of the robot's camera, frame ``camera_optical``.

Stamps are simulated: image k of the robot's camera has stamp ``--stamp-offset-s + k / fps``. Frames go
out in lock-step with the node (``--pace-topic``, e.g. ``/da3/depth/camera_info``): frame k+1 is
published when the node's output with frame k's stamp arrived, or after ``--pace-timeout-s``.

``--pause-at K --resume-file F``: before frame K, print ``PAUSED`` and wait until F exists (e.g. while the
test calls ``~/reset``).

Before publishing, the process writes the oracle spec (``--spec``: the digests of every frame it will
publish, the robot's camera path, ``--garbage-frames`` whose windows the oracle predicts as garbage and
``--pose-conditioned``) and prints ``SPEC_WRITTEN``; it waits for a subscriber on the image and camera_info
topics, then prints ``PUBLISHING``, ``SENT k`` per frame and ``DONE`` at the end. It keeps the TF alive afterwards
until interrupted (the test may call services).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import rclpy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from da3_ros.backends.oracle_backend import write_oracle_spec  # noqa: E402
from da3_ros.geometry.camera import PinholeCamera  # noqa: E402
from da3_ros.ros_io import intrinsics_to_camera_info, numpy_to_image, transform_stamped  # noqa: E402
from ros_harness import RELIABLE  # noqa: E402  (this folder: the tests' RELIABLE profile)
from world_process import OdometryStream, WorldProcess, stamp_msg  # noqa: E402
from da3_ros.synthetic.robot import BASE_FRAME, CAMERA_OPTICAL_FRAME, WHEEL_ODOM_FRAME, SyntheticRobot  # noqa: E402


def _frames(text: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    assert all(i >= 0 for i in out), f"frame indices must be >= 0, got {text!r}"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True, help="oracle spec file to write")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--first-frame", type=int, default=0)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--namespace", default="/camera")
    ap.add_argument("--odometry-frame", default=WHEEL_ODOM_FRAME)
    ap.add_argument("--stamp-offset-s", type=float, default=1000.0)
    ap.add_argument("--odom-lead-s", type=float, default=0.1)
    ap.add_argument("--pace-topic", default="", help="node output (CameraInfo) to wait for per frame")
    ap.add_argument("--pace-timeout-s", type=float, default=3.0)
    ap.add_argument("--garbage-frames", default="", help="e.g. 20-25: their windows are oracle garbage")
    ap.add_argument("--pose-conditioned", action="store_true")
    ap.add_argument("--no-static-tf", action="store_true", help="omit the camera mount (error-path tests)")
    ap.add_argument("--no-odometry-tf", action="store_true", help="a robot without odometry in TF")
    ap.add_argument("--pause-at", type=int, default=-1,
                    help="before this frame print PAUSED and wait for --resume-file")
    ap.add_argument("--resume-file", default="")
    ap.add_argument("--start-file", default="",
                    help="wait until this file exists before the first frame (the test lets its subscriptions match)")
    args = ap.parse_args(argv)

    robot = SyntheticRobot(fps=args.fps)
    seq = robot.sequence(args.width, args.height)
    indices = list(range(args.first_frame, args.first_frame + args.frames))
    frames = {i: seq.render(i)[0] for i in indices}
    write_oracle_spec(args.spec, frames, camera_path="robot_tour", width=args.width, height=args.height,
                      views=args.views, robot_fps=robot.fps, garbage_frames=_frames(args.garbage_frames),
                      pose_conditioned=args.pose_conditioned)
    print("SPEC_WRITTEN", flush=True)

    world = WorldProcess("da3_robot_world", args.pace_topic)
    ns = args.namespace.rstrip("/")
    image_pub = world.node.create_publisher(Image, f"{ns}/image", RELIABLE)
    info_pub = world.node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)
    offset_ns = int(round(args.stamp_offset_s * 1e9))
    if not args.no_static_tf:
        world.tf.send_static([transform_stamped(T, stamp_msg(offset_ns), parent, child)
                              for parent, child, T in robot.static_transforms])
    wheel = robot.wheel_odometry
    odometry = OdometryStream(world.tf, np.round(np.asarray(wheel.stamps) * 1e9).astype(np.int64),
                              None if args.no_odometry_tf else wheel.T_odomwheel_base, args.odometry_frame, BASE_FRAME,
                              offset_ns)
    try:
        world.wait_to_start([image_pub, info_pub], args.start_file)
        K = seq.K
        for i in indices:
            if i == args.pause_at:
                print("PAUSED", flush=True)
                while not Path(args.resume_file).exists():
                    world.spin(0.05)
                print("RESUMED", flush=True)
            t = float(robot.camera_stamps[i])
            odometry.send_until(int(round((t + args.odom_lead_s) * 1e9)))
            stamp_ns = offset_ns + int(round(t * 1e9))
            header = Header(stamp=stamp_msg(stamp_ns), frame_id=CAMERA_OPTICAL_FRAME)
            world.spin(0.01)
            info_pub.publish(intrinsics_to_camera_info(PinholeCamera(args.width, args.height, K), header=header))
            image_pub.publish(numpy_to_image(frames[i], "rgb8", header=header))
            print(f"SENT {i}", flush=True)
            if args.pace_topic:
                world.wait_for_stamp(header.stamp, args.pace_timeout_s)
            else:
                world.spin(1.0 / args.fps)
        print("DONE", flush=True)
        world.keep_alive(odometry)   # TF alive (and growing slowly) for services / late lookups
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        world.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
