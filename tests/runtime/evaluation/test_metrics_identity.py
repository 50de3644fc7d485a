"""The dlib identity judge on real portraits (the [eval] extra; skipped without it or the media)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facepaint.engine.errors import BackendUnavailable
from facepaint.runtime.evaluation.identity import (
    SAME_PERSON_THRESHOLD,
    IdentityJudge,
    cosine_similarity,
    descriptor_distance,
)


@pytest.fixture(scope="module")
def judge() -> IdentityJudge:
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    return IdentityJudge()


def _descriptor(judge: IdentityJudge, path: Path) -> np.ndarray:
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    desc = judge.descriptor(rgb)
    assert desc is not None, f"dlib found no face in {path}"
    return desc


def test_identical_faces(judge: IdentityJudge, portrait: Path) -> None:
    a = _descriptor(judge, portrait)
    b = _descriptor(judge, portrait)
    assert descriptor_distance(a, b) == pytest.approx(0.0, abs=1e-6)
    assert cosine_similarity(a, b) == pytest.approx(1.0, abs=1e-6)


def test_same_and_different_person(judge: IdentityJudge, media: Path) -> None:
    obama = _descriptor(judge, media / "portraits" / "obama.jpg")
    obama2 = _descriptor(judge, media / "portraits" / "obama2.jpg")
    biden = _descriptor(judge, media / "portraits" / "biden2.jpg")
    assert descriptor_distance(obama, obama2) < SAME_PERSON_THRESHOLD
    assert descriptor_distance(obama, biden) > SAME_PERSON_THRESHOLD
    assert cosine_similarity(obama, obama2) > cosine_similarity(obama, biden)


def test_no_face_is_none_not_a_crash(judge: IdentityJudge) -> None:
    assert judge.descriptor(np.zeros((120, 160, 3), np.uint8)) is None


def test_missing_dlib_is_one_line_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install 'facepaint-live\[eval\]'") as info:
        IdentityJudge()
    assert "\n" not in str(info.value)
