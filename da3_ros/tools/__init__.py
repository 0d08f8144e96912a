"""Standalone helpers around the node (launch-argument parsing, RViz config generation): ROS-free, and they
import nothing else of da3_ros, so the launch file and a user's shell can use them on any machine."""
