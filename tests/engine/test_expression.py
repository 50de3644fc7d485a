"""The expression vocabulary, prototypes and the shipped basis file."""

from __future__ import annotations

import numpy as np
import pytest

from facepaint.engine.errors import ModelError
from facepaint.engine.expression import (
    EXPRESSIONS,
    ExpressionConfig,
    blendshape_offset,
    channels,
    default_basis_path,
    load_basis,
)
from facepaint.engine.track import BLENDSHAPE_NAMES

SMILE = [BLENDSHAPE_NAMES.index(n) for n in ("mouthSmileLeft", "mouthSmileRight")]


def test_shipped_basis_loads_and_is_checked(tmp_path) -> None:
    basis = load_basis()
    assert basis.version == 1 and basis.template.shape == (478, 3)
    assert basis.basis.shape == (len(basis.names), 478, 3) and "jawOpen" in basis.names
    # A unit of jawOpen moves the chin down (y grows downwards) by a visible share of the face.
    chin = basis.basis[basis.names.index("jawOpen"), 152]
    assert chin[1] > 0.05
    damaged = tmp_path / "basis.npz"
    raw = bytearray(default_basis_path().read_bytes())
    raw[-10] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="sha256"):
        load_basis(damaged)
    with pytest.raises(ModelError, match="cannot be read"):
        load_basis(tmp_path / "missing.npz")


def test_offsets_follow_the_strength_semantics() -> None:
    smiling = np.zeros(52)
    smiling[SMILE] = 0.9
    assert not blendshape_offset(ExpressionConfig(expression="sad", strength=0.0), smiling).any()
    neutral = blendshape_offset(ExpressionConfig(expression="neutral"), smiling)
    assert np.allclose(neutral[SMILE], -0.9)
    happy = blendshape_offset(ExpressionConfig(expression="happy"), smiling)
    assert (happy[SMILE] >= 0).all()  # happy never shrinks a smile
    sets = blendshape_offset(ExpressionConfig(au=(("AU12", 0.5, False), ("AU1", 0.2, True))), smiling)
    assert np.allclose(sets[SMILE], -0.4) and sets[BLENDSHAPE_NAMES.index("browInnerUp")] == pytest.approx(0.2)


def test_names_and_ranges_are_checked() -> None:
    assert channels("AU01") == channels("au1") == ("browInnerUp",)
    assert channels("mouthSmileLeft") == ("mouthSmileLeft",)
    with pytest.raises(ValueError, match="unknown AU 'AU3'"):
        channels("AU3")
    with pytest.raises(ValueError, match="happy, sad"):
        ExpressionConfig(expression="joy")
    with pytest.raises(ValueError, match=r"\[0, 1.5\]"):
        ExpressionConfig(expression="happy", strength=1.6)
    with pytest.raises(ValueError, match="pose offsets"):
        ExpressionConfig(pose=(0.0, 60.0, 0.0))
    assert set(EXPRESSIONS) == {"happy", "sad", "surprised", "angry", "disgusted", "fearful", "contempt", "neutral"}
