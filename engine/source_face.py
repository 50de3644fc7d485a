"""SourceFace: everything about the source portrait that is computed once, before the first frame."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facepaint.engine.errors import ConfigError, InputError, NoFaceError
from facepaint.engine.geometry import eye_openness, mouth_openness, soft_polygon
from facepaint.engine.topology import Topology, get_topology
from facepaint.engine.track import FaceTrack
from facepaint.engine.warp import PiecewiseAffineWarp, border_ring, triangulate

# The head mask's feather (sigma) and how far it reaches past the inpainted hull, in face widths:
# the margin is three times the feather plus the mixer's default feather (0.015), so the mask is
# 1 wherever the background was inpainted and a still head shows no trace of the inpainting.
HEAD_MASK_BLUR = 0.02
HEAD_MASK_MARGIN = 0.11
# Hair sits above the head ring (the ring's top is about the hairline): the person region reaches
# this fraction of the ring's height above it. 0.15 covered the short hair on the Obama portrait
# and lp_s42; longer hair stays partly in the background.
HAIR_RISE = 0.15
# How the person is filled out of the background: Telea's fast marching (a smooth smear), or one of
# OpenCV contrib's exemplar methods (``cv2.xphoto``: shift-map, FSR fast), which copy texture from
# the rest of the crop. FSR's "best" variant is left out: minutes per portrait on 2 cores.
INPAINT_METHODS = ("telea", "shiftmap", "fsr")


@dataclass(frozen=True)
class SourceConfig:
    """How the source crop is prepared.

    Attributes:
        margin: Crop margin around the landmark box, as fractions of its (width, height), applied
            left/right and bottom; the top gets ``margin_top`` to keep the hair.
        margin_top: Crop margin above the landmark box, as a fraction of its height.
        head_ring: Scale of the head ring (face oval grown about its centre) that moves rigidly
            with the head, so hair and ears follow while the crop border stays still.
        ring_points: Fixed points per side of the crop border.
        grid_cells: Coarse warp cells across the face width (higher: finer warp, slower).
        inpaint_size: Longest side at which the person is inpainted out of the background.
        inpaint: The inpainting method, one of ``INPAINT_METHODS``.
        face_dilate: Growth of the head hull (the head ring's hull: face, hair near it, ears) that
            is removed from the background, in face widths.
    """

    margin: float = 0.45
    margin_top: float = 0.6
    head_ring: float = 1.3
    ring_points: int = 6
    grid_cells: int = 90
    inpaint_size: int = 256
    inpaint: str = "telea"
    face_dilate: float = 0.03

    def __post_init__(self) -> None:
        if not 0.3 <= self.margin <= 2.0 or not 0.3 <= self.margin_top <= 2.0:
            raise ValueError(f"margin and margin_top must be in [0.3, 2], got {self.margin}, {self.margin_top}")
        if not 1.05 <= self.head_ring <= 1.6:
            raise ValueError(f"head_ring must be in [1.05, 1.6], got {self.head_ring}")
        if self.ring_points < 2 or self.grid_cells < 16 or self.inpaint_size < 64:
            raise ValueError("ring_points >= 2, grid_cells >= 16 and inpaint_size >= 64 are required")
        if self.inpaint not in INPAINT_METHODS:
            raise ValueError(f"inpaint must be one of {', '.join(INPAINT_METHODS)}, got {self.inpaint!r}")
        if not 0.0 <= self.face_dilate <= 0.3:
            raise ValueError(f"face_dilate must be in [0, 0.3], got {self.face_dilate}")


@dataclass(frozen=True, eq=False)
class SourceFace:
    """The prepared source portrait (all coordinates in crop pixels unless stated).

    Attributes:
        image: Full source RGB uint8 (H, W, 3).
        topology: Landmark layout of ``landmarks``.
        box: The part of the crop inside the image, (x0, y0, x1, y1) in image pixels: the only
            pixels a render can change.
        pad: (left, top, right, bottom) crop pixels beyond the image (mirrored), so a face near
            the image edge still has room to move and the fixed ring stays out of sight.
        crop: Source RGB crop (padded).
        landmarks: (N, 3) landmarks; z in the same pixel scale.
        anchors: (K, 3) head-ring points (they move with the head pose only).
        ring: (M, 2) fixed crop-border points.
        triangles: Triangulation of ``[landmarks[topology.warp], anchors, ring]`` (2-D).
        warp: Backward-warp rasteriser over ``triangles`` at crop size.
        background: Crop with the person (the head hull) inpainted away: what the mixer shows
            where the moved head no longer covers.
        head_mask: Soft person mask (float32 in [0, 1]) of the head hull, reaching past the
            inpainted region by ``HEAD_MASK_MARGIN`` so that, at rest, every pixel the mask does
            not fully cover is the source's own (no inpainting halo).
        face_width: Face width in pixels (outer eye corners distance times 2).
        eye_open: Lid gap over eye width per eye.
        mouth_open: Inner-lip gap over mouth width.
        lid_colour: Per eye, RGB of the lid skin (float32 (2, 3)).
        lash_colour: Per eye, RGB of the lash line (float32 (2, 3)).
        mouth_stats: (mean, std) RGB of the lower face, for colour-matching the driving mouth.
        mouth_mask: Soft mask (float32, crop size) of the source's inner mouth (teeth, if shown).
        iris_radius: Per eye, iris radius in pixels (0 where the topology has no irises).
        sclera_colour: Per eye, RGB of the white of the eye (float32 (2, 3)).
        smile: The source's own smile (mean of the tracker's two mouthSmile scores, 0..1).
        feather: The mixer's feather (face widths) already folded into ``head_mask`` at prepare
            time (0: none), so a mixer of warped head masks need not blur every frame.
    """

    image: np.ndarray
    topology: Topology
    box: tuple[int, int, int, int]
    pad: tuple[int, int, int, int]
    crop: np.ndarray
    landmarks: np.ndarray
    anchors: np.ndarray
    ring: np.ndarray
    triangles: np.ndarray
    warp: PiecewiseAffineWarp
    background: np.ndarray
    head_mask: np.ndarray
    face_width: float
    eye_open: np.ndarray
    mouth_open: float
    lid_colour: np.ndarray
    lash_colour: np.ndarray
    mouth_stats: tuple[np.ndarray, np.ndarray]
    mouth_mask: np.ndarray
    iris_radius: np.ndarray
    sclera_colour: np.ndarray
    smile: float = 0.0
    feather: float = 0.0

    @property
    def origin(self) -> tuple[int, int]:
        """Image pixel (x, y) of the crop's top-left corner (negative where padded)."""
        return self.box[0] - self.pad[0], self.box[1] - self.pad[1]

    @property
    def vertices(self) -> np.ndarray:
        """(N + K + M, 2) source positions of all warp vertices."""
        return np.concatenate([self.landmarks[self.topology.warp, :2], self.anchors[:, :2], self.ring])


def prepare_source(image: np.ndarray, face: FaceTrack, config: SourceConfig, *,
                   feather: float = 0.0) -> SourceFace:
    """Crop, triangulate, inpaint and measure the source face once.

    Args:
        image: Source RGB uint8 (H, W, 3).
        face: The source's tracked face.
        config: Crop and preparation settings.
        feather: The mixer's feather (Gaussian sigma in face widths) to fold into the head mask
            here, once: a blur before a smooth warp is, to within a pixel, the blur after it.

    Returns:
        The prepared ``SourceFace``.

    Raises:
        InputError: If the image is not RGB uint8.
        NoFaceError: If the face is missing or its landmarks do not fit its topology.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"source image must be RGB uint8 (H, W, 3), got {getattr(image, 'shape', type(image))}")
    if face is None:
        raise NoFaceError("no face in the source image; use a portrait with one clear, frontal face")
    topo = get_topology(face.topology)
    if face.landmarks.shape != (topo.n_points, 3):
        raise NoFaceError(f"source landmarks must be ({topo.n_points}, 3) for {topo.name}, got {face.landmarks.shape}")
    lm_full = np.asarray(face.landmarks, np.float64)
    box, pad, crop = _padded_crop(image, lm_full, config)
    lm = lm_full.copy()
    lm[:, 0] -= box[0] - pad[0]
    lm[:, 1] -= box[1] - pad[1]
    size = (crop.shape[1], crop.shape[0])
    face_width = _face_width(lm, topo)
    anchors = _head_ring(lm, topo, config.head_ring, size)
    ring = border_ring(size[0], size[1], config.ring_points).astype(np.float64)
    verts = np.concatenate([lm[topo.warp, :2], anchors[:, :2], ring])
    tri = triangulate(verts)
    step = max(1, int(round(face_width / config.grid_cells)))
    background, head_mask = remove_person(crop, anchors, face_width, config, feather)
    lid, lash = _eye_colours(crop, lm, topo)
    radius, sclera = _iris_and_sclera(crop, lm, topo)
    return SourceFace(
        image=image, topology=topo, box=box, pad=pad, crop=crop, landmarks=lm, anchors=anchors, ring=ring,
        triangles=tri, warp=PiecewiseAffineWarp(tri, size, step), background=background,
        head_mask=head_mask, face_width=face_width,
        eye_open=eye_openness(lm, topo), mouth_open=mouth_openness(lm, topo),
        lid_colour=lid, lash_colour=lash, mouth_stats=region_stats(crop, mouth_region(lm, topo)),
        mouth_mask=soft_polygon((size[1], size[0]), lm[topo.lips_inner, :2], 0.004 * face_width),
        iris_radius=radius, sclera_colour=sclera,
        smile=0.5 * (face.blendshape("mouthSmileLeft") + face.blendshape("mouthSmileRight")), feather=feather,
    )


def _padded_crop(image: np.ndarray, lm: np.ndarray, cfg: SourceConfig):
    """(box inside the image, pad beyond it, crop) around the landmarks with the config margins."""
    h, w = image.shape[:2]
    x0, y0 = lm[:, :2].min(0)
    x1, y1 = lm[:, :2].max(0)
    bw, bh = x1 - x0, y1 - y0
    want = (int(np.floor(x0 - cfg.margin * bw)), int(np.floor(y0 - cfg.margin_top * bh)),
            int(np.ceil(x1 + cfg.margin * bw)), int(np.ceil(y1 + cfg.margin * bh)))
    box = (max(0, want[0]), max(0, want[1]), min(w, want[2]), min(h, want[3]))
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        raise NoFaceError(f"the source face lies outside the image ({w}x{h}); use a portrait with the face inside")
    # Mirrored beyond the image, at most one face size (the ring only needs room, not content).
    limit = int(max(bw, bh))
    pad = (min(limit, box[0] - want[0]), min(limit, box[1] - want[1]),
           min(limit, want[2] - box[2]), min(limit, want[3] - box[3]))
    return box, pad, padded_crop(image, box, pad)


def padded_crop(image: np.ndarray, box: tuple[int, int, int, int],
                pad: tuple[int, int, int, int]) -> np.ndarray:
    """The ``box`` of ``image``, mirrored ``pad`` pixels (left, top, right, bottom) beyond it."""
    crop = image[box[1]:box[3], box[0]:box[2]]
    if any(pad):
        small = min(crop.shape[:2]) <= max(pad)
        mode = cv2.BORDER_REPLICATE if small else cv2.BORDER_REFLECT_101
        crop = cv2.copyMakeBorder(crop, pad[1], pad[3], pad[0], pad[2], mode)
    return np.ascontiguousarray(crop)


def _face_width(lm: np.ndarray, topo: Topology) -> float:
    outer = float(np.linalg.norm(lm[topo.eye_corners[0][0], :2] - lm[topo.eye_corners[1][0], :2]))
    return max(outer * 2.0, 8.0)


def _head_ring(lm: np.ndarray, topo: Topology, scale: float, size: tuple[int, int]) -> np.ndarray:
    oval = lm[topo.oval]
    centre = oval.mean(0)
    ring = oval.copy()
    ring[:, :2] = centre[:2] + scale * (oval[:, :2] - centre[:2])
    # Keep the ring strictly inside the crop so that it never coincides with the fixed border points.
    ring[:, 0] = np.clip(ring[:, 0], 3, size[0] - 4)
    ring[:, 1] = np.clip(ring[:, 1], 3, size[1] - 4)
    return ring


def _head_hull(anchors: np.ndarray) -> np.ndarray:
    """Convex hull (k, 2) of the head ring with its upper half raised by ``HAIR_RISE`` ring
    heights (scaled by how high each point sits), so hair above the ring is in the person too."""
    ring = anchors[:, :2].astype(np.float32)
    centre_y = ring[:, 1].mean()
    height = float(np.ptp(ring[:, 1])) + 1.0
    up = np.clip((centre_y - ring[:, 1]) / (0.5 * height), 0.0, 1.0)
    raised = ring - np.stack([np.zeros_like(up), HAIR_RISE * height * up], 1)
    return cv2.convexHull(np.concatenate([ring, raised]))[:, 0]


def person_layers(crop: np.ndarray, lm: np.ndarray, topo: Topology,
                  config: SourceConfig) -> tuple[np.ndarray, np.ndarray]:
    """``remove_person`` of any image with the face ``lm`` (the mixer's training pairs use it)."""
    size = (crop.shape[1], crop.shape[0])
    face_width = _face_width(lm, topo)
    return remove_person(crop, _head_ring(lm, topo, config.head_ring, size), face_width, config)


def remove_person(crop: np.ndarray, anchors: np.ndarray, face_width: float,
                  cfg: SourceConfig, feather: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The person layers of a crop: (background with the head hull inpainted away, soft head mask
    reaching ``HEAD_MASK_MARGIN`` face widths past the inpainted region).

    Args:
        crop: RGB uint8 image.
        anchors: (K, 2+) head-ring points in its pixels (``head_ring``).
        face_width: Face width in pixels.
        cfg: Source settings (``inpaint_size``, ``face_dilate``).
        feather: A further blur of the mask (face widths), added in quadrature: two Gaussian
            blurs are one of sigma sqrt(a^2 + b^2).
    """
    h, w = crop.shape[:2]
    hull = _head_hull(anchors)
    f = min(1.0, cfg.inpaint_size / max(h, w))
    small = cv2.resize(crop, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
    mask: np.ndarray = (soft_polygon(small.shape[:2], hull * f, 0) > 0.5).astype(np.uint8) * 255
    k = max(3, int(2 * cfg.face_dilate * face_width * f) | 1)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    filled = inpaint(small, mask, cfg.inpaint)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    big = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)[..., None] > 127
    background = np.where(big, filled, crop)
    grown: np.ndarray = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(grown, np.round(hull).astype(np.int32), 255)
    k = max(3, int(2 * (cfg.face_dilate + HEAD_MASK_MARGIN) * face_width) | 1)
    grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    sigma = float(np.hypot(HEAD_MASK_BLUR, feather)) * face_width
    head_mask = cv2.GaussianBlur(grown.astype(np.float32) / 255.0, (0, 0), sigma)
    return background, head_mask


def inpaint(image: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """``image`` (RGB uint8) with the pixels where ``mask`` (uint8) is non-zero filled by ``method``.

    Raises:
        ConfigError: An exemplar method where this OpenCV has no ``xphoto`` (the plain build).
    """
    if method == "telea":
        return cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)
    xphoto = getattr(cv2, "xphoto", None)
    if xphoto is None:
        # opencv-python and opencv-contrib-python both write cv2/; whichever pip installed last wins.
        raise ConfigError(f"engine.source.inpaint = '{method}' needs OpenCV's contrib build (cv2.xphoto); "
                          f"pip install --force-reinstall --no-deps opencv-contrib-python=={cv2.__version__}.*, "
                          "or inpaint = 'telea'")
    filled = np.zeros_like(image)
    known = np.where(mask > 0, 0, 255).astype(np.uint8)  # xphoto's mask marks the known pixels
    if method == "shiftmap":  # matches patches in Lab, as its authors do
        xphoto.inpaint(cv2.cvtColor(image, cv2.COLOR_RGB2Lab), known, filled, xphoto.INPAINT_SHIFTMAP)
        return cv2.cvtColor(filled, cv2.COLOR_Lab2RGB)
    xphoto.inpaint(image, known, filled, xphoto.INPAINT_FSR_FAST)
    return filled


def _eye_colours(crop: np.ndarray, lm: np.ndarray, topo: Topology) -> tuple[np.ndarray, np.ndarray]:
    lid = np.zeros((2, 3), np.float32)
    lash = np.zeros((2, 3), np.float32)
    for k in range(2):
        upper = lm[topo.lids[k][:, 0], :2]
        c = topo.eye_corners[k]
        width = np.linalg.norm(lm[c[0], :2] - lm[c[1], :2])
        lower = lm[topo.lids[k][:, 1], :2]
        above = np.concatenate([upper - [0, 0.08 * width], (upper - [0, 0.24 * width])[::-1]])
        below = np.concatenate([lower + [0, 0.10 * width], (lower + [0, 0.30 * width])[::-1]])
        # A shut lid is lit like the skin around the eye: average the lighter skin above (clear
        # of lashes, brows and crease shadow) and below the eye.
        lid[k] = 0.5 * (_light_skin(crop, above) + _light_skin(crop, below))
        edge = np.concatenate([upper - [0, 0.06 * width], (upper + [0, 0.04 * width])[::-1]])
        px = _pixels_in(crop, edge)
        if len(px):
            dark = px[np.argsort(px.sum(1))[: max(1, len(px) // 4)]]
            lash[k] = dark.mean(0)
    return lid, lash


def _iris_and_sclera(crop: np.ndarray, lm: np.ndarray, topo: Topology) -> tuple[np.ndarray, np.ndarray]:
    radius = np.zeros(2)
    sclera = np.full((2, 3), 220.0, np.float32)
    for k in range(2):
        iris = topo.irises[k]
        if len(iris) < 2:
            continue
        centre = lm[iris[0], :2]
        radius[k] = float(np.linalg.norm(lm[iris[1:], :2] - centre, axis=1).mean())
        px = _pixels_in(crop, lm[topo.eyes[k], :2])
        if len(px) < 4:
            continue
        yy, xx = np.nonzero(soft_polygon(crop.shape[:2], lm[topo.eyes[k], :2], 0) > 0.5)
        outside = np.hypot(xx - centre[0], yy - centre[1]) > 1.2 * radius[k]
        white = crop[yy[outside], xx[outside]].astype(np.float32) if outside.any() else px
        luma = white.sum(1)
        sclera[k] = white[luma >= np.percentile(luma, 75)].mean(0)
    return radius, sclera


def _light_skin(img: np.ndarray, poly: np.ndarray) -> np.ndarray:
    px = _pixels_in(img, poly)
    if not len(px):
        return img.reshape(-1, 3).mean(0)
    luma = px.sum(1)
    return px[luma >= np.percentile(luma, 50)].mean(0)


def _pixels_in(img: np.ndarray, poly: np.ndarray) -> np.ndarray:
    mask = soft_polygon(img.shape[:2], poly, 0) > 0.5
    return img[mask].astype(np.float32)


def mouth_region(lm: np.ndarray, topo: Topology) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) of the lower face around the lips, in the landmarks' pixels."""
    lips = lm[topo.lips_outer, :2]
    lo, hi = lips.min(0), lips.max(0)
    pad = 0.35 * (hi[0] - lo[0])
    return int(lo[0] - pad), int(lo[1] - pad), int(hi[0] + pad), int(hi[1] + pad)


def region_stats(img: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) of ``img`` inside ``box`` (clipped), sampled every 2nd pixel."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    px = img[y0:y1:2, x0:x1:2].reshape(-1, 3).astype(np.float32)
    if len(px) < 4:
        return np.full(3, 128, np.float32), np.full(3, 40, np.float32)
    return px.mean(0), px.std(0) + 1.0
