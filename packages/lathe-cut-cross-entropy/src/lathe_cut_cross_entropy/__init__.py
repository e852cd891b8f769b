"""Cut Cross Entropy (Wijmans et al., 2024): the loss without materialising the logits."""
