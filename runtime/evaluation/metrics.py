"""Quality metrics of a reenacted video, FACEGAN- and FOMM-style: pure numpy on tracked sequences.

A ``TrackSeries`` holds what the tracker saw in each frame of one video (NaN rows where no face was
found); the functions here compare an output series with the driving series and never raise on
missing faces or constant signals: such figures come back as None (``null`` in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facepaint.engine.track import AU_NAMES, BLENDSHAPE_NAMES, FaceTrack
from facepaint.runtime.evaluation.geometry_judge import GEOMETRY_SIGNALS
from facepaint.runtime.evaluation.identity import SAME_PERSON_THRESHOLD, cosine_similarity, descriptor_distance

# Signals whose motion transfer is scored (r and amplitude); each is the mean of its blendshapes.
SIGNALS: dict[str, tuple[str, ...]] = {
    "jaw": ("jawOpen",),
    "blink": ("eyeBlinkLeft", "eyeBlinkRight"),
    "smile": ("mouthSmileLeft", "mouthSmileRight"),
    "brows": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"),
}
ANGLES = ("yaw", "pitch", "roll")
# The two bounds scored beside every output: the source unmoved, and the driving frame itself.
BOUND_NAMES = ("frozen_source", "pasted_driving")
# Outer eye corners: the inter-ocular distance normalises landmark errors (AKD / LSIM).
EYE_CORNERS = {"mediapipe478": (33, 263), "ibug68": (36, 45)}
PSNR_CAP_DB = 100.0
MAX_LAG_FRAMES = 8
# Blendshape 0 is MediaPipe's "_neutral" score, not an expression: left out of ED.
_EXPRESSION_BS = slice(1, len(BLENDSHAPE_NAMES))
_N_AU = len(AU_NAMES) - 3


@dataclass(frozen=True, eq=False)
class TrackSeries:
    """Per-frame tracking of one video; rows are NaN where no face was found.

    Attributes:
        landmarks: (T, N, 2) pixel x, y.
        blendshapes: (T, 52).
        au: (T, 17) AU intensities (pose left out).
        rotation: (T, 3) yaw, pitch, roll in degrees.
        iod: (T,) inter-ocular distance in pixels.
        topology: Landmark topology of the tracker.
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    au: np.ndarray
    rotation: np.ndarray
    iod: np.ndarray
    topology: str

    @property
    def found(self) -> np.ndarray:
        """(T,) bool, True where a face was tracked."""
        return np.isfinite(self.iod)

    def __len__(self) -> int:
        return len(self.iod)

    def take(self, n: int) -> TrackSeries:
        """The first ``n`` frames."""
        return TrackSeries(self.landmarks[:n], self.blendshapes[:n], self.au[:n], self.rotation[:n],
                           self.iod[:n], self.topology)


def series_from_tracks(tracks: Sequence[FaceTrack | None], topology: str = "mediapipe478") -> TrackSeries:
    """Stack per-frame tracks (None: no face) into a ``TrackSeries``."""
    first = next((t for t in tracks if t is not None), None)
    topology = first.topology if first is not None else topology
    n_pts = first.landmarks.shape[0] if first is not None else 1
    t_len = len(tracks)
    lm = np.full((t_len, n_pts, 2), np.nan)
    bs = np.full((t_len, len(BLENDSHAPE_NAMES)), np.nan)
    au = np.full((t_len, _N_AU), np.nan)
    rot = np.full((t_len, 3), np.nan)
    iod = np.full(t_len, np.nan)
    a, b = EYE_CORNERS.get(topology, EYE_CORNERS["mediapipe478"])
    for i, tr in enumerate(tracks):
        if tr is None:
            continue
        lm[i] = tr.landmarks[:, :2]
        bs[i] = tr.blendshapes
        au[i] = tr.au[:_N_AU]
        rot[i] = tr.rotation
        iod[i] = float(np.linalg.norm(tr.landmarks[a, :2] - tr.landmarks[b, :2]))
    return TrackSeries(lm, bs, au, rot, iod, topology)


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None when it is None, NaN or infinite (JSON-safe)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation over the frames where both are finite; None for fewer than 3 frames or
    a constant signal (r is undefined there, and a frozen face *is* constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    xs, ys = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    denom = math.sqrt(float(xs @ xs) * float(ys @ ys))
    if denom < 1e-12:
        return None
    return finite(float(xs @ ys) / denom)


def amplitude_ratio(out: np.ndarray, driving: np.ndarray) -> float | None:
    """std(out) / std(driving) over frames where both are finite; None when driving is constant."""
    out = np.asarray(out, dtype=np.float64)
    driving = np.asarray(driving, dtype=np.float64)
    ok = np.isfinite(out) & np.isfinite(driving)
    if ok.sum() < 3:
        return None
    sd = float(driving[ok].std())
    return finite(float(out[ok].std()) / sd) if sd > 1e-9 else None


def _mean_rows(values: np.ndarray) -> float | None:
    ok = np.isfinite(values)
    return finite(float(values[ok].mean())) if ok.any() else None


def signal(series: TrackSeries, name: str) -> np.ndarray:
    """(T,) one scored signal (``SIGNALS``) of a series."""
    idx = [BLENDSHAPE_NAMES.index(n) for n in SIGNALS[name]]
    return series.blendshapes[:, idx].mean(axis=1)


def lag(out: np.ndarray, driving: np.ndarray, max_lag: int = MAX_LAG_FRAMES) -> int | None:
    """How many frames ``out`` trails ``driving``: the shift in [-max_lag, max_lag] that maximises
    Pearson r of out[t] against driving[t - shift] (smoothing and pipeline delays show up here).
    None where r is undefined at every shift (a constant signal)."""
    best, best_r = None, -2.0
    n = len(out)
    # Nearest shifts first, and a later one must beat r clearly: ties (a ramp) mean no lag.
    for shift in sorted(range(-max_lag, max_lag + 1), key=abs):
        if n - abs(shift) < 3:
            continue
        o = out[shift:] if shift >= 0 else out[:shift]
        d = driving[:n - shift] if shift >= 0 else driving[-shift:]
        r = pearson(o, d)
        if r is not None and r > best_r + 1e-6:
            best, best_r = shift, r
    return best


def expression_metrics(out: TrackSeries, driving: TrackSeries) -> dict:
    """ED (mean L2 between blendshape / AU vectors) and per-signal r, amplitude ratio and lag."""
    ed_bs = np.linalg.norm(out.blendshapes[:, _EXPRESSION_BS] - driving.blendshapes[:, _EXPRESSION_BS], axis=1)
    ed_au = np.linalg.norm(out.au - driving.au, axis=1)
    signals = {}
    for name in SIGNALS:
        so, sd = signal(out, name), signal(driving, name)
        signals[name] = {"r": pearson(so, sd), "amplitude": amplitude_ratio(so, sd), "lag_frames": lag(so, sd)}
    return {"ed_blendshapes": _mean_rows(ed_bs), "ed_au": _mean_rows(ed_au), "signals": signals}


def _relative(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``values`` minus their first tracked frame (motion is transferred relative to it)."""
    if not found.any():
        return values
    return values - values[int(np.argmax(found))]


def pose_metrics(out: TrackSeries, driving: TrackSeries) -> dict:
    """Per angle: mean abs error in degrees of the relative pose (PSIM), Pearson r and the
    amplitude ratio std(output) / std(driving)."""
    ro = _relative(out.rotation, out.found)
    rd = _relative(driving.rotation, driving.found)
    result = {}
    for i, name in enumerate(ANGLES):
        err = np.abs(ro[:, i] - rd[:, i])
        result[name] = {"mae_deg": _mean_rows(err), "r": pearson(ro[:, i], rd[:, i]),
                        "amplitude": amplitude_ratio(ro[:, i], rd[:, i])}
    return result


def geometry_metrics(out: np.ndarray, driving: np.ndarray, names: Sequence[str]) -> dict:
    """Pearson r and amplitude ratio of the second judge's signals (``geometry_judge``).

    Args:
        out: (T, K) the candidate's signals per frame, NaN rows where no face was found.
        driving: (T, K) the driving video's.
        names: The K signal names; "yaw", "pitch" and "roll" are taken relative to the first
            frame with a face (pose is transferred relative to it).

    Returns:
        {name: {"r": float | None, "amplitude": float | None}}.
    """
    out, driving = np.asarray(out, np.float64), np.asarray(driving, np.float64)
    result = {}
    for k, name in enumerate(names):
        o, d = out[:, k], driving[:, k]
        if name in ANGLES:
            o, d = _relative(o, np.isfinite(o)), _relative(d, np.isfinite(d))
        result[name] = {"r": pearson(o, d), "amplitude": amplitude_ratio(o, d)}
    return result


def judge_agreement(driving: TrackSeries, geometry: np.ndarray) -> dict:
    """Pearson r between the two judges on the driving video itself, per motion signal.

    A signal the judges disagree on in the driving clip (a head that barely moves, a smile the
    blendshape model reads as 0) is not measured reliably there, by either of them; no output can
    be expected to correlate with it better than the judges correlate with each other.
    """
    mediapipe = {name: signal(driving, name) for name in ("jaw", "blink", "smile")}
    mediapipe.update({a: _relative(driving.rotation, driving.found)[:, i] for i, a in enumerate(ANGLES)})
    geo = np.asarray(geometry, np.float64)
    result = {}
    for k, name in enumerate(GEOMETRY_SIGNALS):
        other = _relative(geo[:, k], np.isfinite(geo[:, k])) if name in ANGLES else geo[:, k]
        result[name] = pearson(mediapipe[name], other)
    return result


def landmark_metrics(out: TrackSeries, driving: TrackSeries, absolute: bool) -> dict:
    """AKD / LSIM: mean landmark distance in inter-ocular distances.

    Args:
        out: The output's series.
        driving: The driving (for self-reenactment: the real frames') series.
        absolute: Compare positions directly (self-reenactment: same frame geometry). Otherwise
            compare each video's motion relative to its first tracked frame, each normalised by
            its own inter-ocular distance (cross-reenactment: faces differ in place and size).

    Returns:
        {"akd": float | None, "mode": "absolute" | "relative", "jitter": float | None}.
    """
    mode = "absolute" if absolute else "relative"
    if out.landmarks.shape[1] != driving.landmarks.shape[1]:
        return {"akd": None, "mode": mode, "jitter": jitter(out)}
    if absolute:
        dist = np.linalg.norm(out.landmarks - driving.landmarks, axis=2).mean(axis=1) / driving.iod
        return {"akd": _mean_rows(dist), "mode": mode, "jitter": jitter(out)}
    ref_o = out.iod[int(np.argmax(out.found))] if out.found.any() else np.nan
    ref_d = driving.iod[int(np.argmax(driving.found))] if driving.found.any() else np.nan
    mo = _relative(out.landmarks, out.found) / ref_o
    md = _relative(driving.landmarks, driving.found) / ref_d
    dist = np.linalg.norm(mo - md, axis=2).mean(axis=1)
    return {"akd": _mean_rows(dist), "mode": mode, "jitter": jitter(out)}


def jitter(series: TrackSeries) -> float | None:
    """Mean landmark acceleration |x[t+1] - 2 x[t] + x[t-1]| in inter-ocular distances per frame².

    Smooth motion scores near 0 and frame-to-frame shake scores high; read it against the
    pasted_driving bound (the driving video's own jitter, as the tracker sees it).
    """
    if len(series) < 3:
        return None
    acc = series.landmarks[2:] - 2 * series.landmarks[1:-1] + series.landmarks[:-2]
    per_frame = np.linalg.norm(acc, axis=2).mean(axis=1) / series.iod[1:-1]
    return _mean_rows(per_frame)


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute pixel difference on the [0, 1] scale (FOMM's L1)."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images, capped at ``PSNR_CAP_DB`` (identical images)."""
    mse = float(((a.astype(np.float32) - b.astype(np.float32)) ** 2).mean())
    if mse <= 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10.0 * math.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two RGB uint8 images (scikit-image, per channel)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def identity_summary(distances: Sequence[float | None], similarities: Sequence[float | None]) -> dict:
    """AED / CSIM over the judged frames; None entries are frames where dlib found no face."""
    d = np.array([x for x in distances if x is not None], dtype=np.float64)
    s = np.array([x for x in similarities if x is not None], dtype=np.float64)
    return {
        "aed_median": finite(np.median(d)) if d.size else None,
        "aed_mean": finite(d.mean()) if d.size else None,
        "csim_median": finite(np.median(s)) if s.size else None,
        "csim_mean": finite(s.mean()) if s.size else None,
        "same_person_rate": finite((d < SAME_PERSON_THRESHOLD).mean()) if d.size else None,
        "frames_judged": len(distances),
        "faces_missing": sum(x is None for x in distances),
    }


class CandidateLog:
    """What was measured, frame by frame, on one candidate video (the output or a bound)."""

    def __init__(self) -> None:
        self.tracks: list[FaceTrack | None] = []
        self.distances: list[float | None] = []
        self.similarities: list[float | None] = []
        self.l1: list[float] = []
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.regions: list[dict[str, float]] = []  # face / mouth figures (``regions``), self only
        self.geometry: list[np.ndarray | None] = []

    def add_track(self, track: FaceTrack | None) -> None:
        """The face tracked in the next frame (None: none found)."""
        self.tracks.append(track)

    def add_geometry(self, signals: np.ndarray | None) -> None:
        """The second judge's signals in the next frame (None: no face found)."""
        self.geometry.append(signals)

    def add_identity(self, descriptor: np.ndarray | None, source: np.ndarray | None) -> None:
        """A judged frame's descriptor against the source's (either None: dlib found no face)."""
        if descriptor is None or source is None:
            self.distances.append(None)
            self.similarities.append(None)
            return
        self.distances.append(descriptor_distance(descriptor, source))
        self.similarities.append(cosine_similarity(descriptor, source))

    def add_image(self, image: np.ndarray, real: np.ndarray, with_ssim: bool) -> None:
        """Pixel errors against the real frame (self-reenactment); SSIM only when asked (slow)."""
        self.l1.append(l1(image, real))
        self.psnr.append(psnr(image, real))
        if with_ssim:
            self.ssim.append(ssim(image, real))


def candidate_metrics(log: CandidateLog, driving: TrackSeries, real: TrackSeries | None,
                      driving_geometry: np.ndarray | None = None) -> dict:
    """Every figure of one candidate, keyed as ``evaluate.METRIC_KEYS``.

    Args:
        log: The candidate's per-frame measurements.
        driving: The driving video's series (expression and pose references).
        real: For self-reenactment, the series of the real frames at the output size (absolute
            landmarks); None for cross-reenactment (relative landmark motion against ``driving``).
        driving_geometry: (T, K) the second judge's signals on the driving video (None: that
            judge did not run; ``geometry_judge`` is then null).
    """
    series = series_from_tracks(log.tracks, driving.topology)
    n = min(len(series), len(driving))
    series, drv = series.take(n), driving.take(n)
    marks = landmark_metrics(series, real.take(n), absolute=True) if real is not None else \
        landmark_metrics(series, drv, absolute=False)
    image = None
    if log.l1:
        image = {"l1": finite(float(np.mean(log.l1))), "psnr": finite(float(np.mean(log.psnr))),
                 "ssim": finite(float(np.mean(log.ssim))) if log.ssim else None, "ssim_frames": len(log.ssim)}
    return {"frames": n, "faces_missing": int((~series.found).sum()),
            "identity": identity_summary(log.distances, log.similarities),
            "expression": expression_metrics(series, drv), "pose": pose_metrics(series, drv),
            "landmarks": marks, "image": image,
            "geometry_judge": _geometry(log.geometry[:n], driving_geometry)}


def _geometry(rows: Sequence[np.ndarray | None], driving: np.ndarray | None) -> dict | None:
    if driving is None or not rows:
        return None
    out = geometry_rows(rows, len(GEOMETRY_SIGNALS))
    n = min(len(out), len(driving))
    return geometry_metrics(out[:n], driving[:n], GEOMETRY_SIGNALS)


def geometry_rows(rows: Sequence[np.ndarray | None], width: int) -> np.ndarray:
    """(T, width) array of per-frame signal vectors, NaN rows for None."""
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        if row is not None:
            out[i] = row
    return out
