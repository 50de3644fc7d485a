"""Training of the neural stages: data caches, losses and resumable training loops."""
