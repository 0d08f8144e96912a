"""ROS-free geometry: poses, quaternions, SE(3)/Sim(3), pose encodings, unprojection, ray solver."""
