"""ReenactmentEngine: the three FACEGAN stages run per frame (placeholder: the engine helper owns it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings (to be filled by the engine implementation)."""
