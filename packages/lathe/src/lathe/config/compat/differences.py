"""Deliberate differences from Axolotl: keys lathe implements with a meaning that differs on purpose.

Add a row when lathe knowingly does something else than Axolotl for the same key or value; it is
shown in docs/axolotl-compatibility.md (regenerate it: ``python -m lathe.config.compat.docs``).
"""

from __future__ import annotations

from typing import NamedTuple


class Difference(NamedTuple):
    key: str
    axolotl: str
    lathe: str
    why: str
    restore: str = "—"  # the config that gives Axolotl's behaviour back ("—": none needed or possible)


DIFFERENCES: list[Difference] = [
    Difference(
        "fsdp_version (default, with fsdp_config)", "1 (FSDP1)", "2 (FSDP2)",
        "FSDP1 is deprecated in transformers and accelerate; FSDP2 is the one that also runs on CPU",
        "fsdp_version: 1",
    ),
    Difference(
        "unknown keys", "ignored (a typo is silently a default)", "an error with a did-you-mean",
        "a misspelt key must never train a different model than the one asked for",
    ),
    Difference(
        "trust_remote_code / pickle weights", "code and .bin weights load when present",
        "off unless trust_remote_code / allow_pickle_weights is set",
        "loading a model must not run code the user did not ask to run",
    ),
    Difference(
        "`key:` with no value (null)", "the field is None (for bf16: off)",
        "unset: lathe's default applies (bf16: auto, max_grad_norm: 1.0, lora_r: 8)",
        "one rule for every key; write bf16: false or max_grad_norm: 0 to turn those off",
    ),
    Difference(
        "chat_template with tokenizer_use_mistral_common",
        "ignored (mistral-common's request encoding is used)",
        "refused, naming both keys",
        "a key that is accepted and then ignored misleads; mistral-common's encoding is the template",
        "delete chat_template",
    ),
    Difference(
        "`key: false` on an unavailable feature", "the feature stays off", "accepted: it asks for nothing",
        "switching a feature off is honoured by not having it; any other value of the key is refused",
    ),
    Difference(
        "`eot_tokens` unset (chat_template)",
        "EOS alone is the end-of-turn token: with a template whose turns end with another special token "
        "(`<\\|im_end\\|>` on a tokenizer whose EOS is `<\\|endoftext\\|>`) no turn end is trained",
        "EOS and the template's own turn-end special token, trained per `train_on_eot` (default `train_on_eos`)",
        "a model that never learns to close its turn runs on at inference",
        "`eot_tokens: [<the tokenizer's EOS token>]`",
    ),
    Difference(
        "`default_system_message`",
        "changes no token (it only rewrites a sentence the `chatml` template does not contain)",
        "the first turn of a conversation without a system turn, placed by each template (docs/data.md)",
        "a key the user sets must have an effect", "leave it unset",
    ),
    Difference(
        "rows with no trained token", "kept unless `sample_packing`", "dropped and counted",
        "they add no loss, only steps", "— (no token is trained either way)",
    ),
    Difference(
        "`pretraining_dataset`",
        "streamed while training; `max_steps` required; only the first of several entries read",
        "read whole into the prepared cache; several entries refused",
        "the same rows, with epochs, resume and `val_set_size`",
    ),
    Difference(
        "`pretraining_dataset` packed bins",
        "one row of `micro_batch_size` x `sequence_len` tokens, random bins",
        "`micro_batch_size` rows of `sequence_len` tokens, deterministic bins",
        "the same windows per step, reproducible",
    ),
    Difference(
        "`pretraining_dataset` packed, long documents",
        "with its pinned tokenizers 0.23.1, only the first two windows of a document",
        "every window (cut by lathe, whatever the tokenizers version)",
        "no document is cut short; Axolotl's own code gives the same windows with tokenizers 0.23.3",
    ),
    Difference(
        "`pretraining_sample_concatenation: true`",
        "the pad token after each document's EOS is not attended (attention mask 0)",
        "the pad is attended by the documents after it in the row (it is never trained)",
        "lathe's unpacked rows carry no attention mask; padding is otherwise only at the end",
    ),
    Difference(
        "quantize_moe_experts", "with load_in_4bit or load_in_8bit; CUDA only; LoRA on the experts "
        "through lora_target_parameters", "with load_in_4bit only, on CPU and CUDA; the quantized experts "
        "take no LoRA (refused)", "lathe stores the experts in bitsandbytes' 4-bit format; LoRA on them "
        "is not available yet (docs/moe.md)",
    ),
    Difference(
        "qat with adapter (LoRA)", "accepted (only a `peft:` block is refused)",
        "refused: QAT trains the full model",
        "QAT with an adapter is not built or tested in lathe yet; the quantized output is a full model",
    ),
    Difference(
        "qat / quantization weight_dtype nvfp4, mxfp4, ternary", "accepted", "refused (not available yet)",
        "lathe builds only the layouts it tests: int4 weights (with int8/fp8/no activations) and fp8/fp8",
    ),
    Difference(
        "qat / quantization group_size with float8 weights", "ignored", "refused",
        "a key that is accepted and then ignored; float8 weights are scaled per row",
    ),
    Difference(
        "experts_implementation (unset)", "eager (Axolotl pins it)", "transformers' default: grouped_mm where it "
        "runs, else eager", "the same results (a test checks forward and gradients equal eager), one grouped "
        "matmul per projection instead of a loop over experts", "experts_implementation: eager",
    ),
    Difference(
        "`image_size` unset (vision models)",
        "filled from the model's `vision_config.image_size` (else the processor's size), then every image is "
        "resized to it by Axolotl's collator before the processor runs",
        "no resize before the processor: the processor's own resizing applies",
        "one resize, the one the model's processor was published with",
        "`image_size: <the model's vision_config.image_size>`",
    ),
    Difference(
        "resources_per_worker (default) / use_ray", "{GPU: 1}, and Ray always asked for GPUs",
        "{GPU: 1} on a CUDA machine, else {CPU: 1}; GPUs asked for only when a GPU entry is given",
        "the same config runs on CPU Ray workers instead of waiting forever for GPUs",
        "resources_per_worker: {GPU: 1}",
    ),
    Difference(
        "ray_num_workers / resources_per_worker / ray_run_name without use_ray", "ignored",
        "an error", "a key that is accepted and then ignored trains something else than asked",
    ),
]
