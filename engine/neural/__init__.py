"""Neural engine stages (the coarse-to-fine face generator) and what they share with training."""
