"""Spectrum (Hartford et al., 2024): train only the weight matrices with the highest signal-to-noise ratio."""
