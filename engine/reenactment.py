"""ReenactmentEngine: the FACEGAN stages (transform, reenact, mix) run per frame, plus face-lost
handling (hold the last motion, then ease back to the source at rest; blend back in on return)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facepaint.engine.background_mixer import BackgroundMixer, GeometricBackgroundMixer, MixerConfig
from facepaint.engine.errors import ConfigError
from facepaint.engine.expression import (
    BASIS_SHA256,
    ExpressionBasis,
    ExpressionConfig,
    blendshape_offset,
    load_basis,
    make_edit,
    refined_channels,
)
from facepaint.engine.face_reenactor import FaceReenactor, GeometricFaceReenactor, ReenactorConfig
from facepaint.engine.geometry import smoothstep
from facepaint.engine.landmark_transformer import (
    GeometricLandmarkTransformer,
    LandmarkTransformer,
    TargetShape,
    TransformerConfig,
)
from facepaint.engine.person_matte import BackgroundReplacer
from facepaint.engine.reference import NeutralEstimator
from facepaint.engine.source_face import SourceConfig, SourceFace, prepare_source
from facepaint.engine.stages import ModelConfig, build_stage
from facepaint.engine.track import FaceTrack

# The blendshapes (52,) of the face in an RGB image, None when there is none: how an edit is checked.
Measure = Callable[[np.ndarray], np.ndarray | None]
# Measure-and-correct rounds of an edit, and the largest correction (blendshape units): the
# linear basis undershoots on faces far from its training data (Biden's neutral: smile 0.97 ->
# 0.48 uncorrected); two rounds bring the tracker's reading to the request where the basis can.
REFINE_STEPS = 2
REFINE_LIMIT = 0.4


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings, one nested section per stage.

    Attributes:
        source: Source preparation (crop, warp grid, inpainting).
        transformer: Landmark transformer (its ``kind`` picks the implementation).
        reenactor: Face reenactor (its ``kind`` picks the implementation).
        mixer: Background mixer (its ``kind`` picks the implementation).
        model: Weights, backend, device and precision of the neural stages.
        expression: Expression / AU / pose edit of the source, on top of any driving motion.
        hold_s: Seconds the last motion is held after the face is lost.
        ease_s: Seconds to ease back to the source at rest after the hold.
        return_s: Seconds to blend into the live motion when the face comes back.
    """

    source: SourceConfig = field(default_factory=SourceConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    reenactor: ReenactorConfig = field(default_factory=ReenactorConfig)
    mixer: MixerConfig = field(default_factory=MixerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    expression: ExpressionConfig = field(default_factory=ExpressionConfig)
    hold_s: float = 0.5
    ease_s: float = 0.5
    return_s: float = 0.2

    def __post_init__(self) -> None:
        for name in ("hold_s", "ease_s", "return_s"):
            value = getattr(self, name)
            if not 0.0 <= value <= 10.0:
                raise ValueError(f"{name} must be in [0, 10] seconds, got {value}")
        # A weights folder, backend, device or precision with no neural stage would change nothing:
        # refused, so that --device cuda alone is not mistaken for a GPU run.
        kinds = (self.transformer.kind, self.reenactor.kind, self.mixer.kind)
        if self.model != ModelConfig() and all(kind == "geometric" for kind in kinds) and not self.reenactor.mouth_net:
            raise ValueError("model settings (--weights, --backend, --device, --precision) apply to the neural "
                             "stages and the mouth net only; add --reenactor neural (or --transformer / --mixer "
                             "neural, or [engine.reenactor] mouth_fill = \"neural\" or \"hybrid\")")


class ReenactmentEngine:
    """The source portrait driven frame by frame, complete when built: its edit checked, its
    driving neutral set (or followed live), its background in place.

    Args:
        config: Engine settings.
        image: Source RGB uint8 (H, W, 3).
        face: The source's tracked face (image mode).
        measure: Reads the blendshapes of the edited still, to correct ``config.expression``
            toward what it asks for (None: the edit is not checked).
        neutral: The driving face motion is measured from (None: the first one the engine meets).
        live: A live stream: with ``reference="auto"`` the engine starts from the first face and
            moves the neutral to calmer ones (``NeutralEstimator``) until ``recalibrate`` pins it.
        still: Driven by one still image, which has no neutral frame to measure motion from: it
            is always read against the source's own face (``reference="source"``).
        background: Puts the person of every output frame over another background (None: keep it).

    Raises:
        InputError: If the image is not RGB uint8.
        NoFaceError: If ``face`` is None or malformed.
        ConfigError: If a chosen stage is not part of this install.
    """

    def __init__(self, config: EngineConfig, image: np.ndarray, face: FaceTrack, *, measure: Measure | None = None,
                 neutral: FaceTrack | None = None, live: bool = False, still: bool = False,
                 background: BackgroundReplacer | None = None) -> None:
        if still:
            transformer = dataclasses.replace(config.transformer, reference="source")
            config = dataclasses.replace(config, transformer=transformer)
        self.config = config
        self.source: SourceFace = prepare_source(image, face, config.source, feather=_folded_feather(config))
        self.transformer: LandmarkTransformer = _stage("transformer", config.transformer, self.source, config.model)
        self.reenactor: FaceReenactor = _stage("reenactor", config.reenactor, self.source, config.model)
        self.mixer: BackgroundMixer = _stage("mixer", config.mixer, self.source, config.model)
        self._rest_shape = self.transformer.rest()
        self._live: TargetShape | None = None  # last target from a tracked face
        self._shown: TargetShape | None = None  # last target rendered
        self._driving: tuple[np.ndarray | None, np.ndarray] | None = None  # last (frame, landmarks)
        self._lost_since: float | None = None
        self._return: tuple[float, TargetShape] | None = None
        self._blend_next = False
        self._source_blendshapes = np.asarray(face.blendshapes, np.float64)
        self.expression = config.expression
        self._basis: ExpressionBasis | None = None
        self.set_expression(config.expression, measure)
        self._estimator = NeutralEstimator() if live and config.transformer.reference == "auto" else None
        if neutral is not None:
            self.transformer.calibrate(neutral)
        self.background = background

    @property
    def following_neutral(self) -> bool:
        """Whether the driving neutral is being refined live (built with ``live=True``, reference ``auto``)."""
        return self._estimator is not None

    def reference_state(self) -> str:
        """How the live neutral stands, for the HUD and the exit table."""
        if self._estimator is None:
            return ""
        state = "pinned by recalibrate" if self._estimator.pinned else "refined while calm"
        return f"auto ({self._estimator.changes} changes, {state})"

    @property
    def source_blendshapes(self) -> np.ndarray:
        """(52,) the source face's own blendshapes (what expression edits start from)."""
        return self._source_blendshapes.copy()

    def set_expression(self, expression: ExpressionConfig, measure: Measure | None = None) -> None:
        """Apply an expression / AU / pose edit from now on (an inactive one removes it).

        Args:
            expression: The edit.
            measure: Checks the edit: the blendshapes it carries (``refined_channels``) are read
                off the edited still and their shortfall against the request is added to the
                edit, ``REFINE_STEPS`` times (None: not checked; live hotkeys, whose tracker is busy).

        Raises:
            ModelError: When the expression basis cannot be loaded.
        """
        self._edit(expression, None)
        if measure is not None and expression.active:
            self._refine(measure)

    def _refine(self, measure: Measure) -> None:
        source = self._source_blendshapes
        mask = refined_channels(self.expression, source)
        if not mask.any():
            return
        wanted = source + blendshape_offset(self.expression, source)
        correction = np.zeros_like(source)
        for _ in range(REFINE_STEPS):
            measured = measure(self.rest())
            if measured is None:
                return
            error = np.where(mask, wanted - measured, 0.0)
            correction = np.clip(correction + error, -REFINE_LIMIT, REFINE_LIMIT)
            self._edit(self.expression, correction)

    def _edit(self, expression: ExpressionConfig, correction: np.ndarray | None) -> None:
        edit = None
        if expression.active:
            if self._basis is None:
                self._basis = load_basis(expression.basis_path, None if expression.basis_path else BASIS_SHA256)
            edit = make_edit(expression, self.source, self._source_blendshapes, self._basis, correction)
        self.expression = expression
        self.transformer.set_edit(edit)
        self._rest_shape = self.transformer.rest()

    def set_motion(self, **changes: Any) -> None:
        """Change the transformer's motion settings (``expression``, ``rotation``, ``translation``
        gains, ``regions``) from the next frame on, keeping the neutral and the edit.

        Raises:
            ValueError: An unknown setting or a value the transformer config refuses.
        """
        transformer = dataclasses.replace(self.config.transformer, **changes)
        self.transformer.set_config(transformer)
        self.config = dataclasses.replace(self.config, transformer=transformer)

    def follow_source(self, source: SourceFace, unpose: np.ndarray | None = None) -> None:
        """Drive ``source``, the next frame of a video source (``engine.source_video``), from the
        next ``render`` on. The shapes held for a lost or returning driving face move with the
        source's landmarks, so hold, ease and return go on over the moving source.

        Raises:
            ConfigError: When a stage is not geometric (the neural stages prepare one still).
        """
        t, r, m = self.transformer, self.reenactor, self.mixer
        if not (type(t) is GeometricLandmarkTransformer and type(r) is GeometricFaceReenactor
                and type(m) is GeometricBackgroundMixer):
            raise ConfigError("a video source is driven by the geometric stages only; drop --transformer/"
                              "--reenactor/--mixer neural")
        shift = source.landmarks - self.source.landmarks
        ring = source.anchors - self.source.anchors
        self._live, self._shown = _moved(self._live, shift, ring), _moved(self._shown, shift, ring)
        if self._return is not None:
            t0, start = self._return
            self._return = (t0, TargetShape(start.landmarks + shift, start.anchors + ring, start.eye_closure))
        self.source = source
        t.follow_source(source, unpose)
        r.follow_source(source)
        m.follow_source(source)
        self._rest_shape = t.rest()

    def calibrate(self, face: FaceTrack) -> None:
        """Take ``face`` as the driving neutral before the first frame (sweeps that try several;
        a render gives its neutral to the constructor or to ``reset``)."""
        self.transformer.calibrate(face)

    @property
    def models(self) -> tuple[str, ...]:
        """How each network of the neural stages runs (``face_generator: torch on cpu``...)."""
        return (*self.transformer.models, *self.reenactor.models, *self.mixer.models)

    def close(self) -> None:
        """Release the stages (models, device memory); later calls do nothing."""
        for stage in (self.transformer, self.reenactor, self.mixer):
            stage.close()

    def __enter__(self) -> ReenactmentEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self, neutral: FaceTrack | None = None) -> None:
        """Forget the driving stream: the next frame is rendered as by an engine newly built with
        ``neutral`` (a batch drives one engine with several files; building it again would reload
        its stages)."""
        self.transformer.reset()
        self._live = self._shown = self._driving = self._lost_since = self._return = None
        self._blend_next = False
        if neutral is not None:
            self.transformer.calibrate(neutral)

    def recalibrate(self) -> None:
        """The next driving face seen becomes the neutral (the output blends there, no jump); a
        neutral followed live stays there."""
        if self._estimator is not None:
            self._estimator.pin()
        self._restart_neutral()

    def _restart_neutral(self) -> None:
        self.transformer.reset()
        self._blend_next = True

    def still(self) -> np.ndarray:
        """The output with no driving face: the source at rest, edited, over the background."""
        return self._over_background(self.rest())

    def set_background(self, background: BackgroundReplacer | None) -> None:
        """Put the person over ``background`` from the next frame on (None: the portrait's own).

        The replacer comes prepared (matte and plate made off the render thread, for example by
        ``facepaint.runtime.background.open_background``): the swap is one reference, so a running
        stream loses no frame to it.
        """
        self.background = background

    def _over_background(self, image: np.ndarray) -> np.ndarray:
        background = self.background  # read once: another thread may swap it (``set_background``)
        return image if background is None else background.apply(image)

    def rest(self) -> np.ndarray:
        """The source at rest: a copy of the source image, or the source with the edit applied
        (never over the background: this is the face an edit is checked on)."""
        if not self.expression.active:
            return self.source.image.copy()
        return self.mixer.paste(self.mixer.mix(self.reenactor.render(self._rest_shape, None, None)))

    def render(self, frame: np.ndarray | None, face: FaceTrack | None, t: float) -> np.ndarray:
        """One output frame.

        Args:
            frame: Driving RGB frame (used for the mouth interior), or None.
            face: The driving face, or None when it is lost.
            t: Stream time in seconds.

        Returns:
            RGB uint8 at the source's full resolution, over the background if one was given.
        """
        target = self._live_target(frame, face, t) if face is not None else self._lost_target(t)
        if target is None:
            self._shown = None
            return self.still()
        self._shown = target
        frame_d, lm_d = self._driving if self._driving is not None else (None, None)
        result = self.reenactor.render(target, frame_d, lm_d)
        return self._over_background(self.mixer.paste(self.mixer.mix(result)))

    def _live_target(self, frame: np.ndarray | None, face: FaceTrack, t: float) -> TargetShape:
        if self._estimator is not None and self._estimator.update(face, t):
            self._restart_neutral()  # this face becomes the neutral; the step is blended away
        target = self.transformer.transform(face)
        self._live = target
        self._driving = (frame, np.asarray(face.landmarks))
        if self._lost_since is not None or self._blend_next:
            self._lost_since = None
            self._blend_next = False
            self._return = (t, self._shown if self._shown is not None else self._rest_shape)
        if self._return is not None:
            t0, start = self._return
            w = smoothstep(t - t0, 0.0, self.config.return_s) if self.config.return_s > 0 else 1.0
            if w >= 1.0:
                self._return = None
            else:
                target = start.lerp(target, float(w))
        return target

    def _lost_target(self, t: float) -> TargetShape | None:
        if self._live is None:
            return None
        if self._lost_since is None:
            self._lost_since = t
        dt = t - self._lost_since - self.config.hold_s
        if dt <= 0:
            return self._live
        w = smoothstep(dt, 0.0, self.config.ease_s) if self.config.ease_s > 0 else 1.0
        if w >= 1.0:
            return None
        return self._live.lerp(self._rest_shape, float(w))


def _moved(shape: TargetShape | None, shift: np.ndarray, ring: np.ndarray) -> TargetShape | None:
    """``shape`` carried by the source's own motion (``shift`` per landmark, ``ring`` per anchor)."""
    if shape is None:
        return None
    return TargetShape(shape.landmarks + shift, shape.anchors + ring, shape.eye_closure)


def _stage(name: str, config: Any, source: SourceFace, model: ModelConfig) -> Any:
    """The implementation of stage ``name`` that ``config.kind`` names (neural ones get ``model``)."""
    # The geometric reenactor gets ``model`` too: its mouth net (mouth_fill = "neural") reads it.
    neural = config.kind != "geometric" or name == "reenactor"
    args = (source, config, model) if neural else (source, config)
    return build_stage(name, config.kind, *args)


def _folded_feather(config: EngineConfig) -> float:
    """The mixer's feather to fold into the source's head mask at prepare time: where the
    geometric reenactor's warp carries that mask straight to the geometric mixer, feathering it
    once before the warp replaces a blur every frame. 0 otherwise (a neural reenactor grows the
    mask per frame; the neural mixer was trained on the unfeathered mask)."""
    geometric = config.reenactor.kind == config.mixer.kind == "geometric"
    return config.mixer.feather if geometric else 0.0
