"""ROS-free per-frame pipeline of the node: camera frame -> network window -> tracker -> outputs at
camera resolution (depth, confidence, intrinsics, organized point cloud, pose)."""
