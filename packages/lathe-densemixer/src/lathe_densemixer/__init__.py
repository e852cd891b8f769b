"""DenseMixer (Yao et al., 2025): precise router gradients for mixture-of-experts post-training."""
