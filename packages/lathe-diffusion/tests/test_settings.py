"""The diffusion block reaches the trainer: mask token resolution and the noise schedule."""

import re

import pytest

from lathe.errors import LatheError
from lathe.testing import tiny_tokenizer
from lathe_diffusion.config import DiffusionSection
from lathe_diffusion.trainer import mask_token_id, schedule_of


def test_schedule_follows_the_block() -> None:
    s = schedule_of(DiffusionSection(noise_schedule="cosine", min_mask_ratio=0.2, max_mask_ratio=0.4,
                                     num_diffusion_steps=7, eps=0.01))
    assert (s.schedule, s.min_ratio, s.max_ratio, s.num_steps, s.eps) == ("cosine", 0.2, 0.4, 7, 0.01)


def test_mask_token_id_or_str() -> None:
    tok = tiny_tokenizer()
    assert mask_token_id(DiffusionSection(mask_token_id=5), tok) == 5
    assert mask_token_id(DiffusionSection(mask_token_str="<|endoftext|>"), tok) == tok.convert_tokens_to_ids("<|endoftext|>")
    with pytest.raises(LatheError, match="diffusion.mask_token_id 100000 is outside"):
        mask_token_id(DiffusionSection(mask_token_id=100_000), tok)
    with pytest.raises(LatheError, match=re.escape("diffusion.mask_token_str '<|mask|>' is not in the tokenizer")):
        mask_token_id(DiffusionSection(), tok)  # the plugin adds it in lathe_post_tokenizer_load first
