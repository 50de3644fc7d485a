"""ReenactmentEngine: the FACEGAN stages (transform, reenact, mix) run per frame, plus face-lost
handling (hold the last motion, then ease back to the source at rest; blend back in on return)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facepaint.engine.background_mixer import BackgroundMixer, MixerConfig
from facepaint.engine.face_reenactor import FaceReenactor, ReenactorConfig
from facepaint.engine.geometry import smoothstep
from facepaint.engine.landmark_transformer import LandmarkTransformer, TargetShape, TransformerConfig
from facepaint.engine.source_face import SourceConfig, SourceFace, prepare_source
from facepaint.engine.stages import ModelConfig, build_stage
from facepaint.engine.track import FaceTrack


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings, one nested section per stage.

    Attributes:
        source: Source preparation (crop, warp grid, inpainting).
        transformer: Landmark transformer (its ``kind`` picks the implementation).
        reenactor: Face reenactor (its ``kind`` picks the implementation).
        mixer: Background mixer (its ``kind`` picks the implementation).
        model: Weights, backend, device and precision of the neural stages.
        hold_s: Seconds the last motion is held after the face is lost.
        ease_s: Seconds to ease back to the source at rest after the hold.
        return_s: Seconds to blend into the live motion when the face comes back.
    """

    source: SourceConfig = field(default_factory=SourceConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    reenactor: ReenactorConfig = field(default_factory=ReenactorConfig)
    mixer: MixerConfig = field(default_factory=MixerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    hold_s: float = 0.5
    ease_s: float = 0.5
    return_s: float = 0.2

    def __post_init__(self) -> None:
        for name in ("hold_s", "ease_s", "return_s"):
            value = getattr(self, name)
            if not 0.0 <= value <= 10.0:
                raise ValueError(f"{name} must be in [0, 10] seconds, got {value}")


class ReenactmentEngine:
    """The source portrait driven frame by frame.

    Args:
        config: Engine settings.
        image: Source RGB uint8 (H, W, 3).
        face: The source's tracked face (image mode).

    Raises:
        InputError: If the image is not RGB uint8.
        NoFaceError: If ``face`` is None or malformed.
        ConfigError: If a chosen stage is not part of this install.
    """

    def __init__(self, config: EngineConfig, image: np.ndarray, face: FaceTrack) -> None:
        self.config = config
        self.source: SourceFace = prepare_source(image, face, config.source)
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

    def close(self) -> None:
        """Release the stages (models, device memory); later calls do nothing."""
        for stage in (self.transformer, self.reenactor, self.mixer):
            stage.close()

    def __enter__(self) -> ReenactmentEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recalibrate(self) -> None:
        """The next driving face seen becomes the neutral (the output blends there, no jump)."""
        self.transformer.reset()
        self._blend_next = True

    def rest(self) -> np.ndarray:
        """The source at rest (a copy of the source image)."""
        return self.source.image.copy()

    def render(self, frame: np.ndarray | None, face: FaceTrack | None, t: float) -> np.ndarray:
        """One output frame.

        Args:
            frame: Driving RGB frame (used for the mouth interior), or None.
            face: The driving face, or None when it is lost.
            t: Stream time in seconds.

        Returns:
            RGB uint8 at the source's full resolution.
        """
        target = self._live_target(frame, face, t) if face is not None else self._lost_target(t)
        if target is None:
            self._shown = None
            return self.rest()
        self._shown = target
        frame_d, lm_d = self._driving if self._driving is not None else (None, None)
        result = self.reenactor.render(target, frame_d, lm_d)
        return self.mixer.paste(self.mixer.mix(result))

    def _live_target(self, frame: np.ndarray | None, face: FaceTrack, t: float) -> TargetShape:
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


def _stage(name: str, config: Any, source: SourceFace, model: ModelConfig) -> Any:
    """The implementation of stage ``name`` that ``config.kind`` names (neural ones get ``model``)."""
    args = (source, config) if config.kind == "geometric" else (source, config, model)
    return build_stage(name, config.kind, *args)
