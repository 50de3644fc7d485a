"""facepaint.plugins."""
