"""facepaint.plugins.sinks."""
