"""Tokenizer and model loading, attention backend, adapters (LoRA/QLoRA)."""
