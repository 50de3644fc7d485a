"""Configuration shared by the tracker plugins."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackerConfig:
    """How faces are tracked.

    Attributes:
        name: Tracker plugin (entry point in ``facepaint.trackers``): ``mediapipe`` or ``face-alignment``.
        model_path: Override for the tracker's model file (MediaPipe: face_landmarker.task).
        max_faces: Most faces reported per frame in image mode (stills, the source portrait).
        smoothing: One-Euro smoothing of landmarks, AUs and pose in video mode.
        min_cutoff: One-Euro minimum cutoff frequency in Hz (lower: steadier, more lag at rest).
        beta: One-Euro speed coefficient (higher: less lag on fast motion), per unit of speed: a tenth
            of the face size per second for landmarks, one blendshape unit per second, 30 degrees
            per second for the head pose. The defaults were tuned on lp_d10/lp_d18 to keep blinks
            and jaw openings (tests/plugins/test_tracker_mediapipe.py checks them).
        d_cutoff: One-Euro cutoff of the speed estimate in Hz.
        min_confidence: Minimum face detection / presence confidence.
        device: Torch device for trackers that use torch (face-alignment): ``cpu`` or ``cuda``.
    """

    name: str = "mediapipe"
    model_path: str | None = None
    max_faces: int = 4
    smoothing: bool = True
    min_cutoff: float = 1.0
    beta: float = 5.0
    d_cutoff: float = 1.0
    min_confidence: float = 0.5
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.max_faces < 1:
            raise ValueError(f"tracker.max_faces must be >= 1, got {self.max_faces}")
        if self.min_cutoff <= 0 or self.beta < 0 or self.d_cutoff <= 0:
            raise ValueError(
                "tracker.min_cutoff and tracker.d_cutoff must be > 0 and tracker.beta >= 0, got "
                f"{self.min_cutoff}, {self.d_cutoff} and {self.beta}"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"tracker.min_confidence must be in [0, 1], got {self.min_confidence}")
