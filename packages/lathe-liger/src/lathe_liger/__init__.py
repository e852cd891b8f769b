"""Liger Kernel (Hsu et al., 2024): Triton kernels for RoPE, norms, GLU activations and the loss."""
