"""Fused MoE experts: grouped vs eager step time, and the memory of quantize_moe_experts.

    python bench/moe_experts.py [--device cpu|cuda] [--tokens 2048] [--steps 5]

One Qwen3-MoE-shaped model with random weights (hidden 512, 16 experts, top-4, expert width 256,
2 layers) is timed for a forward+backward step with each ``experts_implementation`` (eager is the
baseline), and with its experts stored in 4 bits by lathe's ``quantize_moe_experts`` path
(NF4, double-quantized absmax). Memory figures are the experts' resident bytes. Ratios only;
everything is measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types

import torch


def build(device: str, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, Qwen3MoeConfig

    config = Qwen3MoeConfig(vocab_size=1024, hidden_size=512, intermediate_size=1024, num_hidden_layers=2,
                            num_attention_heads=8, num_key_value_heads=4, head_dim=64, num_experts=16,
                            num_experts_per_tok=4, moe_intermediate_size=256, decoder_sparse_step=1,
                            mlp_only_layers=[], norm_topk_prob=True, output_router_logits=False)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=dtype).to(device)


def step_seconds(model: torch.nn.Module, ids: torch.Tensor, steps: int) -> float:
    times = []
    for _ in range(steps + 1):  # the first step warms up
        if ids.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        embeds = model.get_input_embeddings()(ids).detach().requires_grad_()
        model(inputs_embeds=embeds, labels=ids).loss.backward()
        if ids.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    return statistics.median(times[1:])


def main() -> None:
    from lathe.models.moe import QuantizedExperts, quantize_experts, resident_bytes

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    ids = torch.randint(0, 1024, (args.tokens // 512, 512), generator=torch.Generator().manual_seed(0)).to(args.device)
    print(f"device {args.device}, {dtype}, torch {torch.__version__}, {args.tokens} tokens/step, median of {args.steps} steps")

    model = build(args.device, dtype)
    seconds = {}
    for impl in ("eager", "grouped_mm"):  # batched_mm gathers a weight matrix per token: out of reach on CPU
        model.set_experts_implementation(impl)
        seconds[impl] = step_seconds(model, ids, args.steps)
    experts = [m.mlp.experts for m in model.model.layers]
    plain_bytes = sum(resident_bytes(m) for m in experts)

    quantize_experts(types.SimpleNamespace(bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True), model)
    quantized = [m.mlp.experts for m in model.model.layers]
    assert all(isinstance(m, QuantizedExperts) for m in quantized)
    q_bytes = sum(resident_bytes(m) for m in quantized)
    seconds["quantize_moe_experts"] = step_seconds(model, ids, args.steps)

    base = seconds["eager"]
    for name, value in seconds.items():
        print(f"{name:22s} {value * 1e3:8.1f} ms/step   {base / value:5.2f}x eager's speed")
    print(f"experts resident bytes: {dtype} {plain_bytes / 2**20:.2f} MiB, 4-bit {q_bytes / 2**20:.2f} MiB "
          f"({plain_bytes / q_bytes:.2f}x smaller)")


if __name__ == "__main__":
    main()
