"""The node's camera inputs: one adapter per mode that turns camera messages into snapshots for the worker.

A snapshot is a ``RigGroup`` (``rig_sync``): one message and its stamp per camera. A single camera is a rig of
one; both adapters give the node the same interface, so the node has one mailbox, one processing path and
publishers per camera:

* ``SingleCameraInput``: ``image`` (``image/compressed``) and ``camera_info``; every image is a snapshot of one.
  Its frame is ``camera_frame``, else the image's ``header.frame_id`` (``camera_optical_frame`` when empty).
* ``RigCameraInputs`` (``cameras`` set): per camera ``<cam>/image`` and ``<cam>/camera_info`` (``RigCameras``);
  the images go through one approximate-time synchroniser (``create_rig_synchronizer``) whose complete groups are
  the snapshots; per-camera frame accounting (``RigFrameAccounting``) for /diagnostics.

``subscribe`` creates the subscriptions (the callbacks never block: they hand snapshots to ``offer``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping

from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..pipeline.rig_accounting import RigFrameAccounting
from ..pipeline.rig_sync import RigGroup
from ..ros_io import stamp_to_ns
from ..ros_io.message_filters_sync import create_rig_synchronizer
from .rig_cameras import RigCameras

__all__ = ["SingleCameraInput", "RigCameraInputs", "create_camera_input"]

Offer = Callable[[RigGroup], None]


def _image_topic(transport: str):
    return (CompressedImage, "image/compressed") if transport == "compressed" else (Image, "image")


class SingleCameraInput:
    """One camera: every image is a snapshot of one (see the module docstring)."""

    what = "image"
    num_cameras = 1

    def __init__(self, settings: Mapping[str, Any]):
        self._camera_frame = str(settings["camera_frame"])

    def topic(self, camera: int, suffix: str) -> str:
        return suffix

    def frame(self, camera: int, header_frame_id: str) -> str:
        return self._camera_frame or header_frame_id or "camera_optical_frame"

    def subscribe(self, node, qos, transport: str, offer: Offer, on_camera_info, use_camera_info: bool) -> List:
        kind, topic = _image_topic(transport)
        subs = [node.create_subscription(kind, topic, lambda msg: offer(RigGroup((stamp_to_ns(msg.header.stamp),),
                                                                                 (msg,))), qos)]
        if use_camera_info:
            subs.append(node.create_subscription(CameraInfo, "camera_info", lambda msg: on_camera_info(msg, 0), qos))
        return subs

    def on_outcome(self, outcome: str) -> None:
        """What happened to a snapshot after the mailbox (counted by the node's own accounting already)."""

    def flush(self) -> None:
        """Nothing waits for partners."""

    def describe(self) -> Dict[str, Any]:
        return {}


class RigCameraInputs:
    """A camera rig: synchronised per-camera images (see the module docstring). ``on_bad_stamp(camera, error)``:
    an image whose stamp the synchroniser refuses (counted and logged by the node)."""

    what = "rig snapshot"

    def __init__(self, cameras: RigCameras, settings: Mapping[str, Any], on_bad_stamp: Callable[[int, str], None]):
        self.cameras = cameras
        self.num_cameras = len(cameras)
        self._slop_s = float(settings["sync_slop_s"])
        self._queue_size = int(settings["sync_queue_size"])
        self._on_bad_stamp = on_bad_stamp
        self.accounting = RigFrameAccounting(self._labels())
        self._sync = None

    def _labels(self) -> List[str]:
        return [self.cameras.label(c) for c in range(self.num_cameras)]

    def topic(self, camera: int, suffix: str) -> str:
        return self.cameras.topic(camera, suffix)

    def frame(self, camera: int, header_frame_id: str) -> str:
        return self.cameras.frame(camera, header_frame_id)

    def subscribe(self, node, qos, transport: str, offer: Offer, on_camera_info, use_camera_info: bool) -> List:
        def on_group(group: RigGroup) -> None:
            self.accounting.on_group()
            offer(group)

        self.accounting = RigFrameAccounting(self._labels())   # counts from this activation on
        self._sync = create_rig_synchronizer(self.num_cameras, slop_s=self._slop_s, queue_size=self._queue_size,
                                             callback=on_group)
        kind, suffix = _image_topic(transport)
        subs = []
        for c in range(self.num_cameras):
            subs.append(node.create_subscription(kind, self.topic(c, suffix), lambda msg, c=c: self._add(c, msg), qos))
            if use_camera_info:
                subs.append(node.create_subscription(CameraInfo, self.topic(c, "camera_info"),
                                                     lambda msg, c=c: on_camera_info(msg, c), qos))
        return subs

    def _add(self, camera: int, msg) -> None:
        """A camera's frame into the synchroniser (executor thread; complete groups go to ``offer``)."""
        try:
            self._sync.add(camera, stamp_to_ns(msg.header.stamp), msg)
        except ValueError as exc:   # counted by nobody else: a bad stamp never enters the synchroniser
            self._on_bad_stamp(camera, str(exc))

    def on_outcome(self, outcome: str) -> None:
        """A group's outcome after the synchroniser, counted for every camera."""
        self.accounting.on_outcome(outcome)

    def flush(self) -> None:
        """Frames still waiting for partners: dropped as "flushed" (the accounting balances)."""
        if self._sync is not None:
            self._sync.flush()

    def describe(self) -> Dict[str, Any]:
        if self._sync is None:
            return {}
        return {"rig_cameras": ", ".join(self.cameras.names),
                "rig_sync": f"{self._sync.implementation}, slop {self._slop_s} s, queue {self._queue_size} per camera",
                **self.accounting.snapshot(self._sync.stats())}


def create_camera_input(settings: Mapping[str, Any], on_bad_stamp: Callable[[int, str], None]):
    """The adapter of the configured mode: a rig when ``cameras`` is set, else one camera."""
    cameras = RigCameras.from_settings(settings)
    return RigCameraInputs(cameras, settings, on_bad_stamp) if cameras.active else SingleCameraInput(settings)
