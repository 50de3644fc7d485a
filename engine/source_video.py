"""A video as the source: each source frame becomes a ``SourceFace`` cheaply, from what was prepared
once for the whole clip.

``prepare_source`` (crop, triangulation, warp rasteriser, inpainting, colour measures) is run once,
on one frame of the clip (the *base*). ``VideoLayout`` keeps from it what holds for every frame:
the crop size (so the warp rasteriser and its border ring are reused), the triangulation (the
landmark layout is the same face), the eye and mouth colours (same person, same light). Per frame,
``frame_source`` only crops at the frame's face, moves the head ring with a similarity fit and
measures the lid and lip gaps: no Delaunay, no inpainting. The background is the source frame
itself: the head keeps the frame's own pose (or turns with the driver inside its own crop), so
nothing behind it needs inventing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from facepaint.engine.errors import InputError, NoFaceError
from facepaint.engine.geometry import eye_openness, mouth_openness, similarity_apply, soft_polygon, umeyama
from facepaint.engine.source_face import SourceFace, mouth_region, padded_crop, region_stats
from facepaint.engine.track import FaceTrack

SOURCE_MOTIONS = ("keep", "driver")  # --source-motion: whose head pose the output has
FITS = ("loop", "cut", "stretch")  # --fit: how the driving clip is laid over the source's length
AUDIOS = ("auto", "source", "driving", "none")  # --audio: auto = the driving's when it has one


@dataclass(frozen=True)
class SourceVideoConfig:
    """How a video source is driven.

    Attributes:
        motion: ``keep``: the output's head pose is the source frame's own, the driver gives the
            expression only. ``driver``: each source face is turned back to the base frame's pose
            (rotation and scale; it stays where the frame has it) and then follows the driver's
            head motion.
        fit: ``loop``: the driving clip repeats until the source ends. ``cut``: it plays once; the
            output ends with the shorter of the two. ``stretch``: its time is scaled to the
            source's length.
        audio: ``auto`` (the driving's audio when it has one, else the source's), ``source``,
            ``driving`` or ``none``.
    """

    motion: str = "keep"
    fit: str = "loop"
    audio: str = "auto"

    def __post_init__(self) -> None:
        for name, allowed in (("motion", SOURCE_MOTIONS), ("fit", FITS), ("audio", AUDIOS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")


@dataclass(frozen=True, eq=False)
class VideoLayout:
    """What ``prepare_source`` made of the base frame that every frame of the clip shares.

    Attributes:
        base: The base frame's prepared source (its crop size, triangulation, warp, colours).
        offset: Crop top-left corner minus the stable points' centre, in the base frame (the crop
            is placed the same way around every frame's face).
        frame_shape: (H, W) every source frame must have.
        full_mask: Head mask of ones: the warped crop replaces the whole crop (the background is
            the frame itself, there is nothing to composite over).
    """

    base: SourceFace
    offset: np.ndarray
    frame_shape: tuple[int, int]
    full_mask: np.ndarray


def video_layout(base: SourceFace) -> VideoLayout:
    """The per-clip part of ``base`` (the prepared base frame)."""
    centre = base.landmarks[base.topology.stable, :2].mean(0)
    h, w = base.crop.shape[:2]
    return VideoLayout(base=base, offset=-centre, frame_shape=base.image.shape[:2],
                       full_mask=np.ones((h, w), np.float32))


def frame_source(layout: VideoLayout, image: np.ndarray, face: FaceTrack) -> SourceFace:
    """The source face of one frame of the clip, at the base's crop size (cheap: see the module).

    Raises:
        InputError: A frame of another size than the clip's first, or not RGB uint8.
        NoFaceError: Landmarks that do not fit the base's topology.
    """
    base = layout.base
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"source frames must be RGB uint8 (H, W, 3), got {image.shape} {image.dtype}")
    if image.shape[:2] != layout.frame_shape:
        raise InputError(f"the source video changes resolution ({layout.frame_shape[1]}x{layout.frame_shape[0]} "
                         f"-> {image.shape[1]}x{image.shape[0]}); re-encode it at one size")
    topo = base.topology
    lm_full = np.asarray(face.landmarks, np.float64)
    if face.topology != topo.name or lm_full.shape != base.landmarks.shape:
        raise NoFaceError(f"source frame landmarks must be {base.landmarks.shape} {topo.name}, got {lm_full.shape}")
    h, w = base.crop.shape[:2]
    corner = np.floor(lm_full[topo.stable, :2].mean(0) + layout.offset).astype(int)
    box, pad, crop = _crop_at(image, int(corner[0]), int(corner[1]), w, h)
    lm = lm_full.copy()
    lm[:, :2] -= corner
    # The head ring moves rigidly with the face: the base's ring carried by the similarity between
    # the two faces' stable points (building it again would need the oval hull, for the same answer).
    s, rot, t = umeyama(base.landmarks[topo.stable], lm[topo.stable])
    anchors = similarity_apply(base.anchors, s, rot, t)
    anchors[:, 0] = np.clip(anchors[:, 0], 3, w - 4)
    anchors[:, 1] = np.clip(anchors[:, 1], 3, h - 4)
    face_width = max(2.0 * float(np.linalg.norm(lm[topo.eye_corners[0][0], :2] - lm[topo.eye_corners[1][0], :2])), 8.0)
    return dataclasses.replace(
        base, image=image, box=box, pad=pad, crop=crop, landmarks=lm, anchors=anchors, background=crop,
        head_mask=layout.full_mask, face_width=face_width, eye_open=eye_openness(lm, topo),
        mouth_open=mouth_openness(lm, topo), mouth_stats=region_stats(crop, mouth_region(lm, topo)),
        mouth_mask=soft_polygon((h, w), lm[topo.lips_inner, :2], 0.004 * face_width),
        iris_radius=base.iris_radius * (face_width / base.face_width),
        smile=0.5 * (face.blendshape("mouthSmileLeft") + face.blendshape("mouthSmileRight")),
    )


def base_rotation(layout: VideoLayout, source: SourceFace) -> np.ndarray:
    """(3, 3) scaled rotation that turns ``source``'s face back to the base frame's pose
    (``--source-motion driver``: the driver's head motion then starts from the base pose)."""
    st = source.topology.stable
    s, rot, _ = umeyama(source.landmarks[st], layout.base.landmarks[st])
    return s * rot


def _crop_at(image: np.ndarray, x0: int, y0: int, w: int, h: int
             ) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int], np.ndarray]:
    """(box inside the image, pad beyond it, crop) of the ``w`` x ``h`` rectangle at (x0, y0),
    mirrored where it leaves the image (as ``prepare_source`` pads a face near the edge)."""
    ih, iw = image.shape[:2]
    box = (max(0, x0), max(0, y0), min(iw, x0 + w), min(ih, y0 + h))
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        raise NoFaceError("the source face left the frame; the crop around it is empty")
    pad = (box[0] - x0, box[1] - y0, x0 + w - box[2], y0 + h - box[3])
    return box, pad, padded_crop(image, box, pad)
