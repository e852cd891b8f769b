"""Grokfast (Lee et al., 2024): amplify the slow component of the gradient."""
