"""ROS-free, NumPy-only geometry: camera model, SE(3)/Sim(3)/SO(3) helpers and quaternions, the DA3 pose encoding
(NumPy twin of model/pose_encoding.py), pose-conditioned windows, point-set alignment."""
