"""Memory and long-context keys: TiledMLP, chunked cross-entropy, garbage collection (docs/memory.md).

The LoRA kernel keys live with the adapter keys, activation offloading and gradient
checkpointing with the model keys; the rules that tie them together are here.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from lathe.config.base import ConfigModel


class MemorySection(ConfigModel):
    tiled_mlp: bool | None = Field(None, description="ALST TiledMLP: run each decoder MLP over sequence shards, recomputed in backward.")
    tiled_mlp_num_shards: int | None = Field(None, ge=1, description="Shards of the sequence for tiled_mlp; default ceil(length / 32768).")
    tiled_mlp_use_original_mlp: bool | None = Field(True, description="Tile the model's own MLP forward (true) or a generic gated (llama) MLP (false).")
    chunked_cross_entropy: bool | None = Field(None, description="Cross-entropy over token chunks from the hidden states: full logits never exist.")
    chunked_cross_entropy_num_chunks: int | None = Field(None, ge=1, description="Chunks for chunked_cross_entropy (default 8).")

    layer_offloading: bool = Field(False, description="Frozen decoder-layer parameters live in CPU memory and visit the GPU one layer at a time (CUDA only; LoRA on a 16-bit base).")

    gc_steps: int | None = Field(None, description="Deprecated (Axolotl): sets torch_empty_cache_steps (when > 0) and gc_collect_steps.")
    torch_empty_cache_steps: int | None = Field(None, ge=1, description="Steps between torch.cuda.empty_cache() calls (the Trainer's own option).")
    gc_collect_steps: int | None = Field(None, ge=-1, description="Steps between gc.collect() calls; -1 only at epoch ends and before evaluation.")

    @model_validator(mode="after")
    def _memory_rules(self) -> MemorySection:
        if self.tiled_mlp_num_shards is not None and not self.tiled_mlp:
            raise ValueError("tiled_mlp_num_shards needs tiled_mlp: true")
        if self.chunked_cross_entropy_num_chunks is not None and not self.chunked_cross_entropy:
            raise ValueError("chunked_cross_entropy_num_chunks needs chunked_cross_entropy: true")
        if self.tiled_mlp_use_original_mlp is False and not self.tiled_mlp:
            raise ValueError("tiled_mlp_use_original_mlp: false needs tiled_mlp: true")
        given = [k for k in ("torch_empty_cache_steps", "gc_collect_steps") if getattr(self, k) is not None]
        if self.gc_steps is not None and given:  # Axolotl drops gc_steps with a warning: here it is an error
            raise ValueError(f"gc_steps is the deprecated spelling of torch_empty_cache_steps and gc_collect_steps; "
                             f"remove it (set: {', '.join(given)})")
        kernels = [k for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel") if getattr(self, k, None)]
        if kernels and getattr(self, "load_in_8bit", False):
            raise ValueError(f"{', '.join(kernels)}: not available with load_in_8bit (8-bit LoRA), as in Axolotl")
        if self.layer_offloading and getattr(self, "activation_offloading", False):
            raise ValueError("layer_offloading with activation_offloading is not available: both replace what "
                             "autograd saves for backward; choose one")
        return self
