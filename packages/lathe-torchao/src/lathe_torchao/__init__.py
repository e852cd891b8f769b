"""torchao for lathe: QAT, post-training quantization and FP8 training."""
