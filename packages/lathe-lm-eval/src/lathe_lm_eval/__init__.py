"""lm-evaluation-harness benchmarks of the trained model (after training, or `lathe lm-eval`)."""
