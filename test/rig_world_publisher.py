"""The synthetic rig world over DDS, as a separate process (multi-camera rig tests, issue 14).

Publishes, RELIABLE (conftest's DDS isolation is inherited from the test):

* ``/tf_static`` (latched, once): ``base_link -> <cam>_optical_frame`` (``T_base_cam``) of every rig camera
  (``left``/``right`` of ``--rig stereo``, ``cam0..`` of ``--rig ring``);
* per camera ``<ns>/<cam>/camera_info`` then ``<ns>/<cam>/image`` (rgb8), frame ``<cam>_optical_frame``, stamp
  ``--stamp-offset-s + RigSequence.stamp_ns(camera, index)`` (path time ``index / 10 Hz`` plus the seeded
  ``--stamp-jitter-s``); camera ``c`` publishes path frame ``i`` iff ``i % rate_divisor[c] == 0``
  (``--rate-divisors "1,2"``: the second camera at half rate);
* with ``--odometry-tf``: ground-truth base odometry ``wheel_odom -> base_link`` (``--odometry-frame``) on
  ``/tf`` at 50 Hz, relative to the base pose of the first published frame, always ``--odom-lead-s`` ahead of
  the images being published (as ``robot_world_publisher.py`` does) so that a lookup at an image stamp
  interpolates.

Order: per path frame, every camera that renders it publishes its camera_info then its image. Pacing: after a
complete rig group (every camera published frame i) the world waits until ``--pace-topic`` (a CameraInfo, e.g.
``/da3/left/depth/camera_info``) shows camera 0's stamp of frame i, or ``--pace-timeout-s``; otherwise (or
without a pace topic) it spins ~0.05 s.

Before publishing, the process writes the oracle spec (``--spec``: the digests of every image it will publish
as view ids ``index * C + camera``, the rig world, ``--views``, ``--translation-noise`` / ``--oracle-noise`` as
oracle noise overrides, ``--pose-conditioned``) and prints ``SPEC_WRITTEN``; it waits for a subscriber on every
image and camera_info topic (and for ``--start-file``, printing ``WAITING FOR START``), prints ``PUBLISHING``,
``SENT i`` per path frame, ``COUNTS {"left": n, "right": m}`` (images per camera) and ``DONE``. It keeps the TF
alive afterwards until interrupted. ``test/rig_world.py`` rebuilds the identical world for the ground truth.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
from rig_world import (BASE_FRAME, WHEEL_ODOM_FRAME, T_wheel_base, odometry_stamps_ns, optical_frame,  # noqa: E402
                       parse_rate_divisors, published_views, rig_world)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True, help="oracle spec file to write")
    ap.add_argument("--rig", choices=("stereo", "ring"), default="stereo")
    ap.add_argument("--baseline", type=float, default=0.12, help="stereo baseline, metres")
    ap.add_argument("--num-cameras", type=int, default=3, help="cameras of the ring")
    ap.add_argument("--path", default="room_tour")
    ap.add_argument("--path-scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0, help="room textures and stamp jitter")
    ap.add_argument("--first-frame", type=int, default=0)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    ap.add_argument("--views", type=int, default=4, help="window size the oracle spec fixes")
    ap.add_argument("--namespace", default="/da3")
    ap.add_argument("--rate-divisors", default="", help='per camera, e.g. "1,2" (default: every camera 1)')
    ap.add_argument("--stamp-jitter-s", type=float, default=0.0)
    ap.add_argument("--stamp-offset-s", type=float, default=1000.0)
    ap.add_argument("--translation-noise", type=float, default=None, help="oracle translation noise override")
    ap.add_argument("--oracle-noise", default="", help="more OracleNoise overrides, e.g. depth_warp=0,low_conf_blobs=0")
    ap.add_argument("--pose-conditioned", action="store_true")
    ap.add_argument("--pace-topic", default="", help="node output (CameraInfo) to wait for per complete rig group")
    ap.add_argument("--pace-timeout-s", type=float, default=3.0)
    ap.add_argument("--start-file", default="",
                    help="wait until this file exists before the first frame (the test lets its subscriptions match)")
    ap.add_argument("--no-static-tf", action="store_true", help="omit the camera mounts (error-path tests)")
    ap.add_argument("--odometry-tf", action="store_true", help="ground-truth base odometry on /tf at 50 Hz")
    ap.add_argument("--odometry-frame", default=WHEEL_ODOM_FRAME)
    ap.add_argument("--odom-lead-s", type=float, default=0.1)
    args = ap.parse_args(argv)

    world = rig_world(args.rig, args.baseline, args.num_cameras, args.path, args.path_scale, args.seed)
    cams = world.rig()
    divisors = parse_rate_divisors(args.rate_divisors) if args.rate_divisors else None
    seq = world.sequence(args.width, args.height, stamp_jitter_s=args.stamp_jitter_s, rate_divisors=divisors)
    plan = published_views(seq, args.first_frame, args.frames)
    images = {(c, i): seq.render(c, i)[0] for i, cameras in plan for c in cameras}
    noise = {k.strip(): float(v) for k, _, v in (p.partition("=") for p in args.oracle_noise.split(",") if p.strip())}
    if args.translation_noise is not None:
        noise["translation_noise"] = args.translation_noise
    noise = noise or None
    write_oracle_spec(args.spec, {seq.view_id(c, i): rgb for (c, i), rgb in images.items()}, camera_path=args.path,
                      width=args.width, height=args.height, views=args.views, seed=args.seed, rig=world.to_dict(),
                      noise=noise, pose_conditioned=args.pose_conditioned)
    print("SPEC_WRITTEN", flush=True)

    world = WorldProcess("da3_rig_world", args.pace_topic)
    ns = args.namespace.rstrip("/")
    names = cams.names
    image_pubs = [world.node.create_publisher(Image, f"{ns}/{name}/image", RELIABLE) for name in names]
    info_pubs = [world.node.create_publisher(CameraInfo, f"{ns}/{name}/camera_info", RELIABLE) for name in names]
    offset_ns = int(round(args.stamp_offset_s * 1e9))
    if not args.no_static_tf:
        world.tf.send_static([transform_stamped(T, stamp_msg(offset_ns), BASE_FRAME, optical_frame(name))
                              for name, T in zip(names, cams.T_base_cam)])
    odom_stamps = odometry_stamps_ns(seq, args.first_frame, args.odom_lead_s)
    odometry = OdometryStream(world.tf, odom_stamps,
                              T_wheel_base(seq, args.first_frame, odom_stamps) if args.odometry_tf else None,
                              args.odometry_frame, BASE_FRAME, offset_ns)
    counts = {name: 0 for name in names}
    lead_ns = int(round(args.odom_lead_s * 1e9))
    try:
        world.wait_to_start(image_pubs + info_pubs, args.start_file)
        K = seq.K
        for i, cameras in plan:
            odometry.send_until(max(seq.stamp_ns(c, i) for c in cameras) + lead_ns)
            world.spin(0.01)
            for c in cameras:
                header = Header(stamp=stamp_msg(offset_ns + seq.stamp_ns(c, i)), frame_id=optical_frame(names[c]))
                info_pubs[c].publish(intrinsics_to_camera_info(PinholeCamera(args.width, args.height, K[c]),
                                                               header=header))
                image_pubs[c].publish(numpy_to_image(images[(c, i)], "rgb8", header=header))
                counts[names[c]] += 1
            print(f"SENT {i}", flush=True)
            if args.pace_topic and len(cameras) == len(names):   # a complete rig group: the node answers it
                world.wait_for_stamp(stamp_msg(offset_ns + seq.stamp_ns(0, i)), args.pace_timeout_s)
            else:
                world.spin(0.05)
        assert sum(counts.values()) == sum(len(cameras) for _, cameras in plan), counts   # every planned image
        print(f"COUNTS {json.dumps(counts)}", flush=True)
        print("DONE", flush=True)
        world.keep_alive(odometry)   # TF alive (and growing slowly) for services / late lookups
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        world.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
