"""The data pipeline: sources, prompt strategies, tokenize and mask, cache, packing, collation."""
