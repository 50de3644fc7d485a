"""Stage 1: driving face -> target landmarks for the source (relative motion, no identity leak)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facepaint.engine.errors import InputError
from facepaint.engine.expression import ShapeEdit
from facepaint.engine.geometry import (
    after_linear,
    eye_openness,
    placed_over,
    scale_rotation,
    similarity_apply,
    smoothstep,
    umeyama,
)
from facepaint.engine.reference import normalise_reference
from facepaint.engine.regions import REGIONS, region_weights
from facepaint.engine.source_face import SourceFace
from facepaint.engine.stages import check_kind
from facepaint.engine.track import FaceTrack

GAIN_RANGE = (0.0, 2.0)  # the gains on the transferred motion (expression, rotation, translation, mouth)


@dataclass(frozen=True)
class TransformerConfig:
    """Landmark-transformer settings.

    Attributes:
        kind: ``geometric`` (this module) or ``neural`` (FACEGAN's MLP, ``facepaint.engine.neural``).
        expression: Gain on the transferred expression displacement.
        rotation: Gain on the transferred head rotation (0 keeps the source's pose).
        translation: Gain on the transferred head translation.
        scale: Follow the driving head's distance to the camera (zoom).
        blink_closed: Driving lid-opening ratio (to its neutral) at which the source eye is shut.
        blink_open: Ratio above which the eye is fully open (no lid fill).
        max_eye_ratio: Cap on widening the source's eyes.
        mouth: Extra gain on the expression around the mouth (falls off over about one mouth
            width). 1 by default: above it the judge tracker read the exaggerated lower face as
            head pitch and roll (1.2 gave pitch r 0.71 against 0.76 at 1 on the validation set,
            at the same jaw r), and the jaw amplitude is already about the driving's.
        smile_headroom: How much of the driving's upward and sideways mouth motion a source that
            already smiles fully loses (scaled by the source's own smile score). Such a source
            has no room left: the driving smile would pull its corners past any real smile, which
            reads as the head pitching rather than as more smile (Obama x lp_d12: pitch r 0.38
            undamped, 0.52 at 0.5).
        ring_follow: Share of the face-oval expression motion (the jaw) passed on to the head
            ring, so the skin between the jaw and the fixed border stretches instead of folding.
        reference: What the driving face is measured against. ``auto`` (the default) and
            ``first`` (``first-frame`` is accepted) are relative motion, FOMM-style: the driving
            face given to ``calibrate`` (``first``: the first one; ``auto``: the runtime picks the
            calmest, see ``facepaint.engine.reference``) maps to the source as it is, so only
            changes are transferred and no driving shape leaks in.
            ``source``: the source's own face placed over each driving face is the neutral, so
            expression and pose are absolute; needed for a still driving image (it has no neutral
            frame) and when the driver cannot start from a neutral face, at the price of some of
            the driving face's shape leaking into the output.
        regions: Which parts of the driving motion are transferred (``eyes``, ``brows``,
            ``mouth``, ``pose``; all by default). Lip-sync only: ``("mouth",)``.
    """

    kind: str = "geometric"
    expression: float = 1.0
    rotation: float = 1.0
    translation: float = 1.0
    scale: bool = True
    blink_closed: float = 0.25
    blink_open: float = 0.7
    max_eye_ratio: float = 1.5
    ring_follow: float = 0.5
    mouth: float = 1.0
    smile_headroom: float = 0.5
    reference: str = "auto"
    regions: tuple[str, ...] = REGIONS

    def __post_init__(self) -> None:
        check_kind("transformer", self.kind)
        object.__setattr__(self, "reference", normalise_reference(self.reference))
        regions = tuple(self.regions)
        unknown = [r for r in regions if r not in REGIONS]
        if unknown or not regions:
            raise ValueError(f"regions must be a non-empty subset of {', '.join(REGIONS)}, got {', '.join(regions)}")
        object.__setattr__(self, "regions", regions)
        for name in ("expression", "rotation", "translation", "mouth"):
            lo, hi = GAIN_RANGE
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} gain must be in [{lo:g}, {hi:g}], got {getattr(self, name)}")
        if not 0.0 <= self.blink_closed < self.blink_open <= 1.0:
            raise ValueError(f"need 0 <= blink_closed < blink_open <= 1, got {self.blink_closed}, {self.blink_open}")
        if not 0.0 <= self.smile_headroom <= 1.0:
            raise ValueError(f"smile_headroom must be in [0, 1], got {self.smile_headroom}")
        if not 0.0 <= self.ring_follow <= 1.0:
            raise ValueError(f"ring_follow must be in [0, 1], got {self.ring_follow}")
        if not 1.0 <= self.max_eye_ratio <= 3.0:
            raise ValueError(f"max_eye_ratio must be in [1, 3], got {self.max_eye_ratio}")


@dataclass(frozen=True, eq=False)
class TargetShape:
    """Where the source face should be in this frame (crop pixels).

    Attributes:
        landmarks: (N, 3) target landmarks.
        anchors: (K, 3) target head-ring points.
        eye_closure: (2,) per eye, 0 open .. 1 shut (drives the lid fill).
    """

    landmarks: np.ndarray
    anchors: np.ndarray
    eye_closure: np.ndarray

    def lerp(self, other: TargetShape, w: float) -> TargetShape:
        """Blend ``(1 - w) * self + w * other``."""
        return TargetShape(self.landmarks + w * (other.landmarks - self.landmarks),
                           self.anchors + w * (other.anchors - self.anchors),
                           self.eye_closure + w * (other.eye_closure - self.eye_closure))


class LandmarkTransformer(Protocol):
    """Maps a driving face to target landmarks for the source (geometric now, FACEGAN MLP later)."""

    # One "model: backend on device" line per network the stage runs (none for geometric ones).
    models: tuple[str, ...]

    def calibrate(self, face: FaceTrack) -> None:
        """Take ``face`` as the driving neutral: it maps to the source as it is."""

    def transform(self, face: FaceTrack) -> TargetShape:
        """Target shape for the driving ``face`` (calibrating on it first if not calibrated)."""

    def rest(self) -> TargetShape:
        """The source's own shape (the target at rest)."""

    def reset(self) -> None:
        """Forget the neutral: the next driving face becomes it."""

    def set_edit(self, edit: ShapeEdit | None) -> None:
        """Add ``edit`` (an expression / AU / pose change of the source) to every target and to
        ``rest()``; None removes it."""

    def set_config(self, config: TransformerConfig) -> None:
        """Use ``config``'s gains and regions from the next ``transform`` on (same ``kind``)."""

    def close(self) -> None:
        """Release what the stage holds (a model, device memory); later calls do nothing."""


class GeometricLandmarkTransformer:
    """Relative motion by similarity fits on stable points, expression deltas and lid ratios.

    Args:
        source: The prepared source face.
        config: Transformer settings.
    """

    models: tuple[str, ...] = ()

    def __init__(self, source: SourceFace, config: TransformerConfig) -> None:
        self.source = source
        self.config = config
        self.topology = source.topology
        self._neutral: np.ndarray | None = None
        self._neutral_eyes = np.ones(2)
        self._to_source: tuple[float, np.ndarray, np.ndarray] | None = None
        self._gain = self._expression_gain()
        self._damp = self._smile_damping()
        self._jaw_share, self._lip_centre = self._jaw_layout()
        self._regions = region_weights(source.landmarks, self.topology, config.regions)
        self.edit: ShapeEdit | None = None
        self._edit_lids = np.ones(2)
        self._unpose: np.ndarray | None = None

    def follow_source(self, source: SourceFace, unpose: np.ndarray | None = None) -> None:
        """Take ``source`` (the next frame of a video source, same face and crop size) as the face
        targets start from; the driving neutral is kept and mapped onto it. The per-landmark gains
        and region weights stay the base frame's: they depend on the face's layout, not its pose.

        Args:
            source: The frame's prepared face (``engine.source_video.frame_source``).
            unpose: (3, 3) scaled rotation turning this face back to the base frame's pose before
                the driving head motion is applied (``--source-motion driver``); None keeps its own.
        """
        self.source = source
        self._unpose = unpose
        if self._neutral is not None:
            self._to_source = umeyama(self._neutral[self.topology.stable], source.landmarks[self.topology.stable])

    def set_config(self, config: TransformerConfig) -> None:
        """Use ``config``'s gains and regions from the next ``transform`` on (a live slider); the
        neutral and the edit are kept."""
        if config.kind != self.config.kind:
            raise ValueError(f"set_config cannot change the transformer kind ({self.config.kind} -> {config.kind})")
        regions = region_weights(self.source.landmarks, self.topology, config.regions)
        self.config = config
        self._gain = self._expression_gain()
        self._damp = self._smile_damping()
        self._regions = regions

    def set_edit(self, edit: ShapeEdit | None) -> None:
        """Add ``edit`` (an expression / AU / pose change of the source) to every target; None removes it."""
        self.edit = edit
        self._edit_lids = np.ones(2)
        if edit is not None:
            edited = self.source.landmarks + edit.displacement
            src_eyes = np.maximum(eye_openness(self.source.landmarks, self.topology), 1e-3)
            self._edit_lids = eye_openness(edited, self.topology) / src_eyes

    def reset(self) -> None:
        """Forget the neutral: the next driving face becomes it."""
        self._neutral = None

    def close(self) -> None:
        """Nothing to release (see ``LandmarkTransformer.close``)."""

    def calibrate(self, face: FaceTrack) -> None:
        """Take ``face`` as the driving neutral (see ``LandmarkTransformer``).

        With ``reference="source"`` the neutral is instead the source's own landmarks moved and
        scaled (not rotated) onto ``face``'s stable points, so ``face``'s expression and its pose
        relative to the source's are what gets transferred.
        """
        lm = self._check(face)
        st = self.topology.stable
        if self.config.reference == "source":
            lm = placed_over(self.source.landmarks, lm, st)
        self._neutral = lm
        self._neutral_eyes = np.maximum(eye_openness(lm, self.topology), 1e-3)
        self._to_source = umeyama(lm[st], self.source.landmarks[st])

    def rest(self) -> TargetShape:
        """The source's own shape, with the edit (if any) applied."""
        if self.edit is None:
            return TargetShape(self.source.landmarks.copy(), self.source.anchors.copy(), np.zeros(2))
        return self._target(np.zeros_like(self.source.landmarks), np.ones(2), lambda pts: pts)

    def transform(self, face: FaceTrack) -> TargetShape:
        """Target shape for ``face`` (see ``LandmarkTransformer``)."""
        lm = self._check(face)
        if self._neutral is None:
            self.calibrate(face)
        neutral, st = self._calibration()[0], self.topology.stable
        s_d, r_d, t_d = umeyama(lm[st], neutral[st])
        unposed = similarity_apply(lm, s_d, r_d, t_d)
        delta, ratio = self._expression(face, lm, unposed)
        if self._regions is not None:
            weights, eyes, pose = self._regions
            delta *= weights[:, None]
            ratio = ratio if eyes else np.ones(2)
            if not pose:
                s_d, r_d, t_d = 1.0, np.eye(3), np.zeros(3)
        pose = self._source_motion(s_d, r_d, t_d)
        if self._unpose is not None:
            pose = after_linear(self._unpose, self.source.landmarks[self.topology.stable].mean(0), pose)
        return self._target(delta, ratio, pose)

    def _target(self, delta: np.ndarray, ratio: np.ndarray, pose) -> TargetShape:
        """The source moved by the expression ``delta`` (plus the edit), its lids opened by the
        driving ``ratio``, then placed by ``pose``."""
        cfg = self.config
        if self.edit is not None:
            delta = delta + self.edit.displacement
            ratio = ratio * self._edit_lids
        shape = self.source.landmarks + delta
        ratio = np.clip(ratio, 0.0, cfg.max_eye_ratio)
        self._set_lids(shape, ratio)
        closure = smoothstep(ratio, cfg.blink_open, cfg.blink_closed)
        anchors = self.source.anchors + cfg.ring_follow * delta[self.topology.oval]
        if self.edit is not None and not np.allclose(self.edit.rotation, np.eye(3)):
            centre = self.source.landmarks[self.topology.stable].mean(0)
            shape = centre + (shape - centre) @ self.edit.rotation.T
            anchors = centre + (anchors - centre) @ self.edit.rotation.T
        anchors, shape = pose(anchors), pose(shape)
        shift = self._inside_shift(anchors)
        shape[:, :2] += shift
        anchors[:, :2] += shift
        return TargetShape(shape, anchors, np.asarray(closure, np.float64))

    def _expression(self, face: FaceTrack, lm: np.ndarray, unposed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) expression displacement in crop pixels and (2,) eye-opening ratio to the neutral.

        Args:
            face: The driving face.
            lm: Its landmarks.
            unposed: ``lm`` moved onto the neutral's stable points (head motion removed).
        """
        neutral, (s_a, r_a, _) = self._calibration()
        delta = self._gain * s_a * (unposed - neutral) @ r_a.T
        if self._damp is not None:
            # Only sideways and upward motion: the jaw opening (downward) keeps its full size.
            # A mouth closing from an open neutral also moves upward: that part (the lower lip
            # centre's upward motion, carried by everything below the lips' mid-line) is the jaw,
            # not a smile, and keeps its full size, or a neutral caught mid-word leaves the mouth
            # open (issue 20: the target's gap was 1.3x the driver's on a smiling self-reenactment).
            jaw = np.minimum(delta[self._lip_centre, 1], 0.0) * self._jaw_share
            rest = delta[:, 1] - jaw
            delta[:, 0] *= self._damp
            delta[:, 1] = jaw + rest * np.where(rest < 0.0, self._damp, 1.0)
        return delta, self._lid_ratio(unposed)

    def _lid_ratio(self, unposed: np.ndarray) -> np.ndarray:
        """(2,) the driver's eye opening against its neutral's (``unposed``: head motion removed)."""
        return eye_openness(unposed, self.topology) / self._neutral_eyes

    def _near_mouth(self) -> np.ndarray:
        """(N,) how near each source landmark is to the mouth: 1 at the outer lips' centre, falling
        as a Gaussian (1/e at 0.8 mouth widths)."""
        lm = self.source.landmarks[:, :2]
        lips = lm[self.topology.lips_outer]
        width = float(np.ptp(lips[:, 0])) + 1.0
        return np.exp(-((lm - lips.mean(0)) ** 2).sum(1) / (0.8 * width) ** 2)

    def _expression_gain(self) -> np.ndarray:
        """(N, 1) per-landmark expression gain: ``expression`` everywhere, raised towards
        ``expression * mouth`` around the mouth."""
        gain = 1.0 + (self.config.mouth - 1.0) * self._near_mouth()
        return (self.config.expression * gain)[:, None]

    def _smile_damping(self) -> np.ndarray | None:
        """(N,) factor on the sideways and upward expression motion around the mouth for a
        source that already smiles (``smile_headroom``), or None when there is nothing to damp."""
        cut = self.config.smile_headroom * float(np.clip(self.source.smile, 0.0, 1.0))
        if cut <= 0.0:
            return None
        return 1.0 - cut * self._near_mouth()

    def _jaw_layout(self) -> tuple[np.ndarray, int]:
        """(N,) share of the lower lip's motion each source landmark carries (1 below the lips'
        mid-line, 0 above, a ramp over a tenth of the mouth width) and the lower lip centre's index."""
        lm = self.source.landmarks[:, :2]
        topo = self.topology
        mid = 0.5 * (lm[topo.lip_pairs[:, 0], 1].mean() + lm[topo.lip_pairs[:, 1], 1].mean())
        width = float(np.ptp(lm[topo.lips_outer, 0])) + 1.0
        share = np.asarray(smoothstep(lm[:, 1] - mid, -0.05 * width, 0.05 * width), np.float64)
        lower = topo.lip_pairs[:, 1]
        centre = lower[np.argsort(lm[lower, 0])[len(lower) // 2]]
        return share, int(centre)

    def _inside_shift(self, anchors: np.ndarray) -> np.ndarray:
        """Shift that keeps the head ring off the fixed crop border (a head that walks out of
        the crop would drag the background with it)."""
        src = self.source.anchors[:, :2]
        h, w = self.source.crop.shape[:2]
        margin = 0.08 * self.source.face_width
        lo = np.minimum(margin, src.min(0))
        hi = np.maximum(np.array([w - 1, h - 1]) - margin, src.max(0))
        a_lo, a_hi = anchors[:, :2].min(0), anchors[:, :2].max(0)
        shift = np.maximum(lo - a_lo, 0.0) + np.minimum(hi - a_hi, 0.0)
        # When the head is too big for the crop both sides overflow: centring is all that helps.
        both = (a_lo < lo) & (a_hi > hi)
        shift[both] = 0.5 * ((lo - a_lo) + (hi - a_hi))[both]
        return shift

    def _calibration(self) -> tuple[np.ndarray, tuple[float, np.ndarray, np.ndarray]]:
        """The driving neutral's landmarks and its similarity onto the source (set by ``calibrate``).

        Raises:
            InputError: Before any driving face was calibrated on.
        """
        if self._neutral is None or self._to_source is None:
            raise InputError("the landmark transformer has no driving neutral yet; calibrate on a driving face first")
        return self._neutral, self._to_source

    def _check(self, face: FaceTrack) -> np.ndarray:
        if face.topology != self.topology.name:
            raise InputError(f"driving face topology '{face.topology}' differs from the source's "
                             f"'{self.topology.name}'; track both with the same tracker")
        return np.asarray(face.landmarks, np.float64)

    def _set_lids(self, shape: np.ndarray, ratio: np.ndarray) -> None:
        """Lid gaps become the source's own gap times the driving ratio, so blinks shut the eye."""
        src = self.source.landmarks
        for k in range(2):
            up, lo = self.topology.lids[k][:, 0], self.topology.lids[k][:, 1]
            mid = 0.5 * (shape[up] + shape[lo])
            half = 0.5 * (src[up] - src[lo]) * ratio[k]
            # A shut eye still needs a hairline gap: zero-area triangles would fold the warp.
            half[:, 1] = np.minimum(half[:, 1], -0.004 * self.source.face_width)
            shape[up] = mid + half
            shape[lo] = mid - half

    def _source_motion(self, s_d: float, r_d: np.ndarray, t_d: np.ndarray):
        """The driving head's motion from its neutral, expressed around the source face."""
        cfg = self.config
        neutral, (s_a, r_a, t_a) = self._calibration()
        r_rel = r_d.T
        if cfg.rotation != 1.0:
            r_rel = scale_rotation(r_rel, cfg.rotation)
        # Zoom is clamped: a driving face leaning into the camera must not outgrow the crop.
        scale = float(np.clip(1.0 / s_d, 0.8, 1.25)) if cfg.scale else 1.0
        # neutral-frame motion x -> (R_d^T (x - t_d)) / s_d, conjugated by neutral->source similarity.
        r_src = r_a @ r_rel @ r_a.T
        centre = self.source.landmarks[self.topology.stable].mean(0)
        neutral_c = neutral[self.topology.stable].mean(0)
        moved_c = similarity_apply(neutral_c[None], 1.0 / s_d, r_d.T, -(r_d.T @ t_d) / s_d)[0]
        shift = cfg.translation * s_a * (r_a @ (moved_c - neutral_c))

        def pose(pts: np.ndarray) -> np.ndarray:
            return centre + shift + scale * (pts - centre) @ r_src.T

        return pose
