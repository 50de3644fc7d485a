"""facepaint.engine.backends."""
