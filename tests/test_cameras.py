"""The camera contract of DESIGN §3, checked numerically."""

import numpy as np
import pytest

from facelift_models import cameras


def test_fixed_views_match_facelift_positions():
    pos = {v.name: cameras.view_c2w(v)[:3, 3] for v in cameras.FIXED_VIEWS}
    assert [v.name for v in cameras.FIXED_VIEWS] == ["front", "front_right", "right", "back", "left", "front_left"]
    np.testing.assert_allclose(pos["front"], [0, -2.7, 0], atol=1e-9)
    np.testing.assert_allclose(pos["front_right"], [-1.909188, -1.909188, 0], atol=1e-6)
    np.testing.assert_allclose(pos["right"], [-2.7, 0, 0], atol=1e-9)  # az +90 sees the head's right side
    np.testing.assert_allclose(pos["back"], [0, 2.7, 0], atol=1e-9)


def test_focal_length_is_50_degree_fov():
    assert cameras.focal_length(512) == pytest.approx(548.993, abs=1e-3)
    K = cameras.intrinsics(64)
    assert K[0, 2] == K[1, 2] == 32


def test_opencv_axes_and_projection():
    c2w = cameras.view_c2w(cameras.FIXED_VIEWS[0])
    # OpenCV: x right (+X world from the front), y down (−Z world), z forward (+Y world).
    np.testing.assert_allclose(c2w[:3, :3], [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-12)
    w2c, K = np.linalg.inv(c2w), cameras.intrinsics(512)
    uv, depth = cameras.project(np.array([[0, 0, 0], [0.1, 0, 0], [0, 0, 0.1]]), w2c, K)
    np.testing.assert_allclose(uv[0], [256, 256])
    assert uv[1, 0] > 256  # world +X appears on the right in the front view
    assert uv[2, 1] < 256  # world up appears higher (smaller row)
    np.testing.assert_allclose(depth, 2.7)


def test_random_views_are_seeded_and_in_range():
    a = cameras.random_views(np.random.default_rng(3), 32)
    b = cameras.random_views(np.random.default_rng(3), 32)
    assert a == b and len(a) == 32
    assert all(0 <= v.azimuth_deg < 360 and -30 <= v.elevation_deg <= 60 for v in a)
    for v in a:
        c2w = cameras.view_c2w(v)
        assert cameras.check_extrinsics(np.linalg.inv(c2w), c2w) is None
        assert np.linalg.norm(c2w[:3, 3]) == pytest.approx(2.7)


def test_blender_matrix_looks_down_minus_z():
    c2w = cameras.view_c2w(cameras.View("x", "random", 30.0, 20.0))
    m = cameras.c2w_to_blender_matrix(c2w)
    # Blender cameras look along their local −Z: that must be the OpenCV forward axis.
    np.testing.assert_allclose(-m[:3, 2], c2w[:3, 2], atol=1e-12)
    np.testing.assert_allclose(m[:3, 1], -c2w[:3, 1], atol=1e-12)


def test_check_extrinsics_rejects_bad_matrices():
    c2w = cameras.view_c2w(cameras.FIXED_VIEWS[1])
    bad = c2w.copy()
    bad[:3, 0] *= 1.1
    assert cameras.check_extrinsics(np.linalg.inv(c2w), bad) is not None
    assert cameras.check_extrinsics(np.eye(4), c2w) == "w2c is not the inverse of c2w"
