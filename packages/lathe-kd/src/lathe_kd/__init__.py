"""Knowledge distillation from a teacher's top-k logprobs stored in the dataset."""
