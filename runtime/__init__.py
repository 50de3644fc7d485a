"""facepaint.runtime."""
