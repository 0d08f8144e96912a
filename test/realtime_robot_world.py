"""The synthetic robot's world in real time, as a separate process (the TF client tests of issue 19).

Unlike ``robot_world_publisher.py`` (lock-step with the node, simulated stamps), this world runs on the wall
clock, as a robot does: image k of the robot's camera is *captured* at ``t0 + k / fps`` (its stamp) and
*published* ``--latency-s`` later (a slow driver / transport: the node's stamp-to-publish latency is at least
that); the wheel odometry ``wheel_odom -> base_link`` (``--no-odometry-tf``: none) is stamped with its own
capture time and published ``--odom-lead-s`` ahead of it (a simulated robot knows its future: the wheel edge
itself never makes a lookup at "now" fail, so a TF client measures the node's edges only).

A real sensor's odometry instead (issue 19): ``--odom-delay-s D`` publishes each sample D after its stamp (late
odometry: with D > ``--latency-s`` the images of a time arrive before its odometry), ``--odom-rate-hz R`` sends R Hz
(every n-th of the 50 Hz samples, on the same clock as the camera) and ``--odom-gap START:END`` drops the samples
stamped in [START, END) s of robot time (a silent odometry, e.g. a driver restart).

``--static-tree robot`` (default): the mount ``base_link -> camera_link -> camera_optical`` on /tf_static;
``d435``: a RealSense driver's tree ``camera_link -> camera_color_frame -> camera_color_optical_frame`` (the
image's frame), no robot; ``none``: nothing.

Prints ``SPEC_WRITTEN``, ``WAITING FOR START``, ``T0 <ns>`` (the capture time of frame 0), ``SENT k`` and ``DONE``;
then keeps the odometry going in real time until interrupted.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from da3_ros.backends.oracle_backend import write_oracle_spec  # noqa: E402
from da3_ros.geometry.camera import PinholeCamera  # noqa: E402
from da3_ros.node.robot_frames import T_BODY_OPTICAL  # noqa: E402
from da3_ros.ros_io import intrinsics_to_camera_info, numpy_to_image, transform_stamped  # noqa: E402
from ros_harness import RELIABLE  # noqa: E402
from world_process import OdometryStream, WorldProcess, odometry_samples, stamp_msg  # noqa: E402
from da3_ros.synthetic.robot import BASE_FRAME, CAMERA_OPTICAL_FRAME, WHEEL_ODOM_FRAME, SyntheticRobot  # noqa: E402

D435_OPTICAL_FRAME = "camera_color_optical_frame"


def d435_static_tree():
    """(parent, child, T) of a RealSense D435 driver's colour camera tree."""
    T_link_color = np.eye(4)
    T_link_color[:3, 3] = [0.0, 0.015, 0.0]
    tree = [("camera_link", "camera_color_frame", T_link_color),
            ("camera_color_frame", D435_OPTICAL_FRAME, T_BODY_OPTICAL.copy())]
    assert all(np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3)) for _, _, T in tree), "mounts must be rigid"
    return tree


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--namespace", default="/da3")
    ap.add_argument("--latency-s", type=float, default=1.0)
    ap.add_argument("--odom-lead-s", type=float, default=0.1)
    ap.add_argument("--odom-delay-s", type=float, default=None,
                    help="publish each odometry sample this long after its stamp (replaces --odom-lead-s)")
    ap.add_argument("--odom-rate-hz", type=float, default=0.0, help="odometry rate (0: the wheel's 50 Hz)")
    ap.add_argument("--odom-gap", default="", help="START:END (s of robot time): no odometry stamped in between")
    ap.add_argument("--static-tree", choices=("robot", "d435", "none"), default="robot")
    ap.add_argument("--no-odometry-tf", action="store_true")
    ap.add_argument("--pose-conditioned", action="store_true", help="the oracle spec's model takes poses")
    ap.add_argument("--start-file", default="")
    args = ap.parse_args(argv)

    robot = SyntheticRobot(fps=args.fps)
    seq = robot.sequence(args.width, args.height)
    frames = {i: seq.render(i)[0] for i in range(args.frames)}
    write_oracle_spec(args.spec, frames, camera_path="robot_tour", width=args.width, height=args.height,
                      views=args.views, robot_fps=robot.fps, pose_conditioned=args.pose_conditioned)
    print("SPEC_WRITTEN", flush=True)

    world = WorldProcess("da3_realtime_world")
    ns = args.namespace.rstrip("/")
    image_pub = world.node.create_publisher(Image, f"{ns}/image", RELIABLE)
    info_pub = world.node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)
    tree = {"robot": robot.static_transforms, "d435": d435_static_tree(), "none": []}[args.static_tree]
    image_frame = D435_OPTICAL_FRAME if args.static_tree == "d435" else CAMERA_OPTICAL_FRAME
    if tree:
        world.tf.send_static([transform_stamped(T, stamp_msg(time.time_ns()), parent, child)
                              for parent, child, T in tree])
    try:
        world.wait_to_start([image_pub, info_pub], args.start_file)
        t0_ns = time.time_ns() + 200_000_000
        wheel = robot.wheel_odometry
        stamps_ns, poses = odometry_samples(wheel.stamps, None if args.no_odometry_tf else wheel.T_odomwheel_base,
                                            args.odom_rate_hz, args.odom_gap)
        odometry = OdometryStream(world.tf, stamps_ns, poses, WHEEL_ODOM_FRAME, BASE_FRAME, t0_ns)
        print(f"T0 {t0_ns}", flush=True)
        lead_s = args.odom_lead_s if args.odom_delay_s is None else -args.odom_delay_s
        latency_ns, lead_ns = int(args.latency_s * 1e9), int(round(lead_s * 1e9))
        K = seq.K
        k = 0
        while True:
            now = time.time_ns()
            odometry.send_until(now - t0_ns + lead_ns)
            capture_ns = t0_ns + int(round(float(robot.camera_stamps[k]) * 1e9)) if k < args.frames else None
            if capture_ns is not None and now >= capture_ns + latency_ns:
                header = Header(stamp=stamp_msg(capture_ns), frame_id=image_frame)
                info_pub.publish(intrinsics_to_camera_info(PinholeCamera(args.width, args.height, K), header=header))
                image_pub.publish(numpy_to_image(frames[k], "rgb8", header=header))
                print(f"SENT {k}", flush=True)
                k += 1
                if k == args.frames:
                    print("DONE", flush=True)
            rclpy.spin_once(world.node, timeout_sec=0.005)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        world.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
