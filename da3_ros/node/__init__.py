"""The ROS 2 node (thin layer: ROS I/O, parameters, threading). The processing lives in
:mod:`da3_ros.pipeline` and the other ROS-free modules."""
