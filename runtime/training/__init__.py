"""Training of the neural stages: the clip cache, the generator's losses and the ``train`` command."""
