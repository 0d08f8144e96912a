"""Loop closure, ROS-free (issue 20): place recognition over keyframe descriptors
(:mod:`~da3_ros.loop.keyframe_database`), geometric verification of a candidate with the tracker's own gates
(:mod:`~da3_ros.loop.loop_verification`), a pose graph over keyframes with gtsam (:mod:`~da3_ros.loop.pose_graph`)
optimised on a thread of its own (:mod:`~da3_ros.loop.graph_optimizer`), and the saved map's format
(:mod:`~da3_ros.loop.map_store`). Imports geometry, tracking, numpy and (lazily, in the pose graph) gtsam.
"""
