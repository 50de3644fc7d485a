"""Training of the neural stages: one clip cache, one loop each model plugs into (``loop.py``),
one checkpoint format, settings from TOML and flags; ``facepaint-live train`` runs it."""
