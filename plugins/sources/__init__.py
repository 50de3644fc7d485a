"""facepaint.plugins.sources."""
