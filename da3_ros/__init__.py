"""da3_ros: Depth Anything 3 as a real-time ROS 2 perception node.

The package is split into a ROS-free core (model, geometry, backends, tracking,
synthetic scenes) and a thin ROS layer (`da3_ros.ros_io`, `da3_ros.node`). Importing the package
itself imports neither torch nor rclpy.
"""

__version__ = "0.1.0"
