"""LLaDA-style masked diffusion language modelling: bidirectional training and iterative unmasking."""
