"""A small byte-level BPE tokenizer, trained offline on a fixed corpus (deterministic)."""

from __future__ import annotations

import functools
from pathlib import Path

from lathe.testing.data import _WORDS

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]


def _corpus() -> list[str]:
    base = " ".join(_WORDS)
    extra = (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request. ### Instruction: ### Input: ### Response: Repeat the words in "
        "reverse order nothing to reverse Uppercase: You are terse. system user assistant "
        "0 1 2 3 4 5 6 7 8 9 + - = ( ) . , : ? ! the a an is of to and in"
    )
    return [base, base.upper(), extra, extra.lower()] * 4


@functools.lru_cache(maxsize=4)
def _trained(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok.to_str()


def tiny_tokenizer(  # type: ignore[no-untyped-def]
    vocab_size: int = 512, *, pad_token: bool = True, chat_template: bool = True,
    eos_token: str = "<|im_end|>", bos_token: str | None = None,
):
    """A ``PreTrainedTokenizerFast`` with ChatML tokens, EOS ``<|im_end|>`` and BOS none.

    ``pad_token=False`` / ``chat_template=False`` build the awkward tokenizers users meet.
    ``eos_token="<|endoftext|>"`` makes ``<|im_end|>`` an end-of-turn token that is not EOS
    (as in base models' tokenizers); ``bos_token="<|endoftext|>"`` gives a tokenizer that
    starts every encoding with that BOS (as Llama's do).
    """
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(_trained(vocab_size))
    if bos_token is not None:
        bos_id = backend.token_to_id(bos_token)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos_token} $A", pair=f"{bos_token} $A {bos_token} $B", special_tokens=[(bos_token, bos_id)])
    specials = [t for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>") if t not in (eos_token, bos_token)]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=eos_token,
        bos_token=bos_token,
        unk_token=None,
        pad_token="<|pad|>" if pad_token else None,
        additional_special_tokens=specials,
        model_max_length=4096,
    )
    if chat_template:
        tok.chat_template = CHATML_TEMPLATE
    return tok


def save_tiny_tokenizer(path: str | Path, **kwargs) -> Path:  # type: ignore[no-untyped-def]
    path = Path(path)
    tiny_tokenizer(**kwargs).save_pretrained(path)
    return path
