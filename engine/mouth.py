"""Inner mouth for the geometric reenactor: the source teeth kept rigid with their lips, and the
driving frame's mouth interior (fitted and colour-matched) where the mouth opens wider."""

from __future__ import annotations

import cv2
import numpy as np

from facepaint.engine.geometry import affine_fit, box_around, mouth_openness, smoothstep, soft_polygon
from facepaint.engine.mouth_colour import LipColour, lip_colour, portrait_interior
from facepaint.engine.source_face import SourceFace, mouth_region, region_stats

# Brightness of a mouth interior with no driving frame, as a share of the lower face's mean colour.
CAVITY_SHADE = 0.25


def mouth_alpha(source: SourceFace, target: np.ndarray, gain_open: float = 0.06) -> tuple[float, float]:
    """How much to repaint the inner mouth, as (opening, closing) strengths in 0..1.

    Wider than the source's opening: the warp only stretches the source's lips, so the interior
    must come from somewhere (the driving frame). Narrower than the source's (a smiling source
    showing teeth): the warp would squash the teeth into a line; instead the teeth stay rigid
    behind the closing lips.

    Args:
        source: The prepared source.
        target: (N, 2+) target landmarks (crop pixels).
        gain_open: Opening beyond the source's (gap over width) at which the fill is full.
    """
    g_t = mouth_openness(target, source.topology)
    g_s = source.mouth_open
    opened = smoothstep(g_t - g_s, 0.01, 0.01 + gain_open)
    closed = smoothstep(g_s - g_t, 0.0, 0.02) if g_s > 0.02 else 0.0
    return float(opened), float(closed)


def paint_mouth(out: np.ndarray, source: SourceFace, target: np.ndarray, frame: np.ndarray | None,
                driving: np.ndarray | None, opened: float, closing: float,
                palette: LipColour | None = None) -> None:
    """Repaint the target inner mouth of ``out`` in place.

    The source's teeth move rigidly with their lip (upper teeth with the upper lip, lower with the
    lower), so closing lips cover them; where the mouth opens beyond what the source shows, the
    driving frame's mouth interior (fitted to the target opening, colour-matched) fills the gap.

    Args:
        out: Reenacted crop (h, w, 3) uint8, modified in place.
        source: The prepared source.
        target: (N, 2+) target landmarks in crop pixels.
        frame: Driving RGB frame, or None (then only the source's teeth are used).
        driving: (N, 2+) driving landmarks in ``frame`` pixels, or None.
        opened: Opening strength from ``mouth_alpha``.
        closing: Closing strength from ``mouth_alpha``.
        palette: The source's ``lip_colour`` (``mouth_colour = "portrait"``): the driving
            interior takes the portrait's colours; None: matched by mean and spread over the
            lower-face box (``mouth_colour = "driver"``).
    """
    inner_t = target[source.topology.lips_inner, :2]
    width = float(np.ptp(inner_t[:, 0])) + 1.0
    h, w = out.shape[:2]
    box = box_around(inner_t, 0.05 * width + 2, (w, h))
    x0, y0, x1, y1 = box
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    teeth, inside = _rigid_teeth(source, target, box)
    drive = opened if opened > 0.01 else 0.0
    if drive > 0.0:
        # No driving frame (an expression edit of the still): a dark cavity behind the source's teeth.
        interior = (_driving_interior(source, target, frame, driving, box, palette)
                    if frame is not None and driving is not None else _cavity(source, teeth.shape))
        layer = teeth * inside + interior * (1.0 - inside)
        cover = np.ones_like(inside)
    else:
        layer, cover = teeth, inside
    alpha = max(drive, closing)
    mask = soft_polygon((y1 - y0, x1 - x0), inner_t, 0.015 * width + 0.5, offset=(x0, y0))
    a = (alpha * mask)[..., None] * cover
    roi = out[y0:y1, x0:x1]
    roi[...] = np.clip(roi * (1.0 - a) + layer * a, 0, 255).astype(np.uint8)


def _rigid_teeth(source: SourceFace, target: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """Source crop resampled with per-column lip shifts split at the target mid-line, and the
    (h, w, 1) share of each sample that falls inside the source's own inner mouth on its own
    jaw's side of the source's lip mid-line."""
    topo = source.topology
    up, lo = topo.lip_pairs[:, 0], topo.lip_pairs[:, 1]
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1, dtype=np.float32)
    order = np.argsort(target[up, 0])
    tx = target[up, 0][order]

    def column(values: np.ndarray) -> np.ndarray:
        return np.interp(xs, tx, values[order]).astype(np.float32)

    src = source.landmarks
    d_up = [column(target[up, k] - src[up, k]) for k in (0, 1)]
    d_lo = [column(target[lo, k] - src[lo, k]) for k in (0, 1)]
    mid = column(0.5 * (target[up, 1] + target[lo, 1]))
    mid_src = column(0.5 * (src[up, 1] + src[lo, 1]))
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    wlo = np.clip(ys - mid[None] + 0.5, 0.0, 1.0)
    map_x = xs[None] - (d_up[0] * (1 - wlo) + d_lo[0] * wlo)
    map_y = ys - (d_up[1] * (1 - wlo) + d_lo[1] * wlo)
    # An upper-layer sample that lands below the source's own lip mid-line (or a lower-layer one
    # above it) is the other jaw's teeth: an opening wider than the source's must show a gap there
    # (the driving interior), not those teeth a second time (read as a closing jaw by the tracker).
    own_side = np.clip((mid_src[None] - map_y) * (1.0 - 2.0 * wlo) + 0.5, 0.0, 1.0)
    teeth = cv2.remap(source.crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.remap(source.mouth_mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return teeth.astype(np.float32), (inside * own_side)[..., None]


def _driving_interior(source: SourceFace, target: np.ndarray, frame: np.ndarray, driving: np.ndarray,
                      box, palette: LipColour | None) -> np.ndarray:
    """The driving inner mouth, affinely fitted to the target opening and coloured from the
    portrait (``palette``) or colour-matched over the lower-face box (None)."""
    topo = source.topology
    x0, y0, x1, y1 = box
    # Least-squares affine target -> driving: takes the driving opening's own proportions.
    m = affine_fit(target[topo.lips_inner, :2], driving[topo.lips_inner, :2])
    m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
    patch = cv2.warpAffine(frame, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    if palette is not None:
        return portrait_interior(patch, palette, lip_colour(frame, driving, topo, teeth=False))
    mu_d, sd_d = region_stats(frame, mouth_region(driving, topo))
    mu_s, sd_s = source.mouth_stats
    return (patch - mu_d) * (sd_s / sd_d) + mu_s


def _cavity(source: SourceFace, shape: tuple[int, ...]) -> np.ndarray:
    """A mouth interior with no driving frame to take it from: the lower face's colour darkened
    to the shade of a mouth's shadowed inside (about a quarter of the skin's brightness)."""
    mu, _ = source.mouth_stats
    return np.broadcast_to(np.asarray(mu, np.float32) * CAVITY_SHADE, shape).astype(np.float32)

