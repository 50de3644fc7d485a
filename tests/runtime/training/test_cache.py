"""The one training cache, on a real clip: aligned crops, frame landmarks and still-box crops."""

from __future__ import annotations

import json

import numpy as np

from facepaint.engine.topology import MESH_LEFT_EYE, MESH_RIGHT_EYE
from facepaint.runtime.training.cache import CacheSettings, build_cache, load_cache


def test_cache_holds_aligned_crops_whose_landmarks_match_a_fresh_track(tiny_cache, image_tracker):
    manifest, clips = load_cache(tiny_cache)
    clip = clips[0]
    assert manifest["clips"][0]["frames"] == len(clip.crops) == 8
    assert clip.crops.shape == (8, 128, 128, 3) and clip.landmarks.shape == (8, 478, 3)
    assert clip.au.shape == (8, 20) and clip.blendshapes.shape == (8, 52)
    assert 0 < clip.landmarks[..., :2].min() and clip.landmarks[..., :2].max() < 128
    # The crops are face-aligned: both eyes sit near the same height in every crop.
    eyes = clip.landmarks[:, list(MESH_RIGHT_EYE) + list(MESH_LEFT_EYE), 1].mean(1)
    assert np.ptp(eyes) < 12
    # The stored landmarks are where the face is in the stored crop.
    fresh = image_tracker.track(np.ascontiguousarray(clip.crops[3]))
    assert fresh
    assert np.linalg.norm(fresh[0].landmarks[:, :2] - clip.landmarks[3, :, :2], axis=1).mean() < 3.0


def test_still_box_crops_share_one_box_and_show_the_face_where_its_landmarks_say(tiny_cache, image_tracker):
    clip = load_cache(tiny_cache)[1][0]
    assert clip.still_crops.shape == (4, 128, 128, 3) and clip.still_index.tolist() == sorted(set(clip.still_index))
    # fomm_00 is 256 px: the frame landmarks are in frame pixels, not crop pixels.
    assert clip.frame_landmarks.shape == (8, 478, 3) and clip.frame_landmarks[..., :2].max() < 256
    fresh = image_tracker.track(np.ascontiguousarray(clip.still_crops[1]))
    assert fresh
    lm = clip.still_landmarks()[1]
    assert np.linalg.norm(fresh[0].landmarks[:, :2] - lm[:, :2], axis=1).mean() < 3.0


def test_cache_is_reused_when_settings_match(tiny_clips, tiny_cache):
    stamp = {p.name: p.stat().st_mtime_ns for p in tiny_cache.glob("*.npz")}
    assert json.loads((tiny_cache / "manifest.json").read_text())["clips"][0]["source"] == "fomm_00.mp4"

    def no_tracker():
        raise AssertionError("a cached clip was tracked again")

    build_cache(tiny_clips, tiny_cache, CacheSettings(max_frames=8, still_crops=4), no_tracker)
    assert stamp == {p.name: p.stat().st_mtime_ns for p in tiny_cache.glob("*.npz")}
