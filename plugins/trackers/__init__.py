"""facepaint.plugins.trackers."""
