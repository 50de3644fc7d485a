"""facepaint.compile."""
