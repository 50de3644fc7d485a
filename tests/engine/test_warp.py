"""The dense piecewise-affine backward warp and the topology tables."""

from __future__ import annotations

import numpy as np
import pytest

from facepaint.engine.errors import ConfigError
from facepaint.engine.topology import IBUG68_FROM_MESH, get_topology
from facepaint.engine.warp import PiecewiseAffineWarp, border_ring, triangle_affines, triangulate


def _grid(n=40, size=(200, 160)):
    rng = np.random.default_rng(0)
    inner = rng.uniform(20, 140, (n, 2))
    return np.concatenate([inner, border_ring(*size, 5)])


def test_affines_map_target_vertices_to_source():
    pts = _grid()
    tri = triangulate(pts)
    dst = pts + np.random.default_rng(1).normal(0, 2, pts.shape)
    aff = triangle_affines(pts, dst, tri)
    for k in range(0, len(tri), 7):
        homo = np.c_[dst[tri[k]], np.ones(3)]
        np.testing.assert_allclose(homo @ aff[k].T, pts[tri[k]], atol=1e-9)


def test_identity_and_translation_maps():
    size = (200, 160)
    pts = _grid(size=size)
    warp = PiecewiseAffineWarp(triangulate(pts), size, step=4)
    mx, my = warp.maps(pts, pts)
    gx, gy = np.meshgrid(np.arange(size[0]), np.arange(size[1]))
    assert mx.shape == (size[1], size[0])
    assert np.abs(mx - gx).max() < 1e-3 and np.abs(my - gy).max() < 1e-3
    moved = pts.copy()
    inner = slice(0, 40)
    moved[inner] += (3.0, -2.0)
    mx, my = warp.maps(pts, moved)
    # The border is exactly fixed (the paste back into the full frame needs no seam).
    assert np.abs(mx[0] - gx[0]).max() < 1e-3 and np.abs(my[:, 0] - gy[:, 0]).max() < 1e-3


def test_topologies():
    mesh, ibug = get_topology("mediapipe478"), get_topology("ibug68")
    assert len(IBUG68_FROM_MESH) == 68 and len(set(IBUG68_FROM_MESH)) == 68
    assert max(IBUG68_FROM_MESH) < 468
    assert len(mesh.oval) == 36 and len(mesh.lips_inner) == 20 and len(mesh.irises[0]) == 5
    assert ibug.n_points == 68 and len(ibug.irises[0]) == 0
    for topo in (mesh, ibug):
        assert all(int(i) < topo.n_points for arr in (topo.oval, topo.stable, topo.lip_pairs) for i in arr.ravel())
    with pytest.raises(ConfigError):
        get_topology("dlib5")
