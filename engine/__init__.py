"""facepaint.engine."""
