"""Sparse fine-tuning (LLM Compressor recipes): keep pruned weights at zero, save in the compressed-tensors format."""
