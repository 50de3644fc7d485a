"""facepaint.plugins.trackers: face trackers (entry-point group ``facepaint.trackers``).

* ``mediapipe``: MediaPipe FaceLandmarker, 478 landmarks, 52 blendshapes, pose (the default).
* ``fan``: face-alignment, 68 iBUG landmarks; pose and blendshapes from geometry (``[fan]`` extra).
* ``smoothing``: the One-Euro filter applied in video mode; ``blendshapes``: AU table, angles,
  geometry-derived blendshapes; ``config``: ``TrackerConfig``.

Nothing here imports mediapipe, torch or face-alignment at import time.
"""
