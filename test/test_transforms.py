"""SE(3)/Sim(3) matrix helpers: inverse, composition, extrinsics <-> camera-to-world, angles."""
import numpy as np
import pytest

from da3_ros.geometry import transforms as tf


def _random_sim3(rng, scale=True):
    R = tf.rotation_from_axis_angle(rng.normal(size=3))
    t = rng.normal(size=3) * 3.0
    s = float(np.exp(rng.uniform(-1, 1))) if scale else 1.0
    return tf.make_transform(R, t, s), R, t, s


def test_make_and_decompose_roundtrip():
    rng = np.random.default_rng(0)
    T, R, t, s = _random_sim3(rng)
    R2, t2, s2 = tf.decompose_transform(T)
    np.testing.assert_allclose(R2, R, atol=1e-12)
    np.testing.assert_allclose(t2, t, atol=1e-12)
    assert abs(s2 - s) < 1e-12
    assert abs(np.linalg.det(R) - 1.0) < 1e-12


def test_inverse_and_compose_sim3():
    rng = np.random.default_rng(1)
    for _ in range(5):
        T, *_ = _random_sim3(rng)
        np.testing.assert_allclose(tf.compose(T, tf.invert_transform(T)), np.eye(4), atol=1e-10)
        np.testing.assert_allclose(tf.invert_transform(T), np.linalg.inv(T), atol=1e-10)
    A, *_ = _random_sim3(rng)
    B, *_ = _random_sim3(rng)
    p = rng.normal(size=(7, 3))
    np.testing.assert_allclose(
        tf.transform_points(tf.compose(A, B), p), tf.transform_points(A, tf.transform_points(B, p)), atol=1e-10
    )
    assert abs(tf.transform_scale(tf.compose(A, B)) - tf.transform_scale(A) * tf.transform_scale(B)) < 1e-10


def test_extrinsics_roundtrip_and_camera_centre():
    rng = np.random.default_rng(2)
    Ts = np.stack([_random_sim3(rng, scale=False)[0] for _ in range(4)])
    E = tf.T_world_cam_to_extrinsics(Ts)
    assert E.shape == (4, 3, 4)
    np.testing.assert_allclose(tf.extrinsics_to_T_world_cam(E), Ts, atol=1e-12)
    np.testing.assert_allclose(tf.camera_centre_from_extrinsics(E), Ts[:, :3, 3], atol=1e-12)
    # a world point seen by the camera: p_cam = E p_world
    pw = rng.normal(size=3)
    pc = E[0, :, :3] @ pw + E[0, :, 3]
    np.testing.assert_allclose(tf.transform_points(Ts[0], pc), pw, atol=1e-12)


def test_rotation_angle_small_and_large():
    for angle in (1e-9, 1e-4, 0.3, 2.0, np.pi - 1e-6):
        R = tf.rotation_from_axis_angle(np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]) * angle)
        assert abs(tf.rotation_angle(R) - angle) < 1e-9
    assert abs(tf.rotation_angle_deg(tf.rotation_from_axis_angle([0, 0, np.pi / 2])) - 90.0) < 1e-9


def test_project_to_rotation_and_relative_motion():
    rng = np.random.default_rng(3)
    R = tf.rotation_from_axis_angle(rng.normal(size=3))
    Rn = tf.project_to_rotation(R + 1e-3 * rng.normal(size=(3, 3)))
    np.testing.assert_allclose(Rn @ Rn.T, np.eye(3), atol=1e-12)
    assert tf.rotation_angle(Rn.T @ R) < 5e-3
    A = tf.make_transform(np.eye(3), [0, 0, 0])
    B = tf.make_transform(tf.rotation_from_axis_angle([0, 0.2, 0]), [3, 4, 0])
    d, a = tf.relative_motion(A, B)
    assert abs(d - 5.0) < 1e-12 and abs(a - 0.2) < 1e-12


def test_bad_input_messages():
    with pytest.raises(ValueError, match="4x4"):
        tf.invert_transform(np.eye(3))
    with pytest.raises(ValueError, match="scale"):
        tf.make_transform(np.eye(3), np.zeros(3), s=-1.0)
    with pytest.raises(ValueError, match="non-positive determinant"):
        tf.transform_scale(np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="extrinsics"):
        tf.extrinsics_to_T_world_cam(np.zeros((2, 3, 3)))


def test_quaternion_to_rotation_and_slerp():
    rng = np.random.default_rng(3)
    for _ in range(20):
        R = tf.rotation_from_axis_angle(rng.normal(size=3))
        q = tf.rotation_to_quaternion_xyzw(R)
        # round trip and sign invariance; float64 rounding only, 1e-12 on unit-scale entries
        np.testing.assert_allclose(tf.quaternion_xyzw_to_rotation(q), R, atol=1e-12)
        np.testing.assert_allclose(tf.quaternion_xyzw_to_rotation(-3.0 * q), R, atol=1e-12)
    axis = np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5])
    q0 = tf.rotation_to_quaternion_xyzw(tf.rotation_from_axis_angle(axis * 0.2))
    q1 = tf.rotation_to_quaternion_xyzw(tf.rotation_from_axis_angle(axis * 2.6))
    for alpha in (0.0, 0.25, 0.5, 1.0):
        # about a fixed axis slerp is linear in the angle; -q1 (same rotation) gives the same result
        expected = tf.rotation_from_axis_angle(axis * (0.2 + alpha * 2.4))
        for b in (q1, -q1):
            np.testing.assert_allclose(tf.quaternion_xyzw_to_rotation(tf.slerp_quaternion_xyzw(q0, b, alpha)),
                                       expected, atol=1e-12)
    np.testing.assert_allclose(tf.slerp_quaternion_xyzw(q0, q0, 0.3), q0, atol=1e-15)
    with pytest.raises(ValueError, match="non-zero"):
        tf.quaternion_xyzw_to_rotation([0.0, 0.0, 0.0, 0.0])


def test_one_rigidity_rule_for_every_validator():
    """check_rigid_transform: float64 data (~1e-15) and float32 data (~1e-7) pass, a 1e-3 scale / shear, a
    reflection, a bad last row or a NaN fail, each with the numbers in the message."""
    rng = np.random.default_rng(5)
    T = tf.make_transform(tf.rotation_from_axis_angle(rng.normal(size=3)), rng.normal(size=3) * 5.0)
    out = tf.check_rigid_transform(T, "T_a_b")
    np.testing.assert_array_equal(out, T)
    assert out is not T and tf.is_rigid_transform(T.astype(np.float32))
    assert tf.rigid_transform_error(T.astype(np.float32)) < 1e-6 < tf.RIGID_TOLERANCE
    stack = np.stack([T, np.eye(4)])
    assert tf.check_rigid_transform(stack).shape == (2, 4, 4) and tf.is_rigid_transform(np.zeros((0, 4, 4)))
    near = T.copy()
    near[3, :3] = 0.5 * tf.RIGID_TOLERANCE  # within the tolerance: accepted, last row returned exact
    np.testing.assert_array_equal(tf.check_rigid_transform(near)[3], [0, 0, 0, 1])
    bad = {"scale": tf.make_transform(np.eye(3), np.zeros(3), s=1.001),
           "shear": np.eye(4) + 1e-3 * np.outer(np.eye(4)[0], np.eye(4)[1]),
           "reflection": np.diag([1.0, 1.0, -1.0, 1.0]),
           "last row": np.vstack([np.eye(4)[:3], [0.0, 0.0, 1e-3, 1.0]])}
    for what, M in bad.items():
        assert not tf.is_rigid_transform(M), what
        with pytest.raises(ValueError, match=r"T_a_b is not a rigid SE\(3\) transform.*orthonormal"):
            tf.check_rigid_transform(M, "T_a_b")
    with pytest.raises(ValueError, match="NaN"):
        tf.check_rigid_transform(np.full((4, 4), np.nan), "T_a_b")
    with pytest.raises(ValueError, match="4x4"):
        tf.check_rigid_transform(np.eye(3), "T_a_b")


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, 0.3, 2.0, np.pi - 1e-5, np.pi])
def test_rotation_log_is_the_inverse_of_rotation_from_axis_angle(angle):
    rng = np.random.default_rng(int(angle * 1000))
    for _ in range(5):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        v = tf.rotation_log(tf.rotation_from_axis_angle(axis * angle))
        if angle == np.pi:  # axis and -axis are the same half turn
            v = v if v @ axis >= 0 else -v
        # 1e-6; within 1e-4 of pi the axis comes from the symmetric part (R + I) / 2, whose entries lose half
        # the float64 digits there: a few 1e-6 measured at pi - 1e-5, hence 1e-5
        atol = 1e-5 if np.pi - angle < 1e-4 else 1e-6
        np.testing.assert_allclose(v, axis * angle, atol=atol)
        np.testing.assert_allclose(tf.rotation_from_axis_angle(v), tf.rotation_from_axis_angle(axis * angle),
                                   atol=atol)
