"""Neural twins of the engine stages (FACEGAN): small nets with shipped fp16 safetensors weights, and
what they share with training."""
