"""facepaint-live batch: many renders, on this machine or on a Ray cluster, resumable."""
