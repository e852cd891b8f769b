"""Flash attention with packed batches: every sequence attends only to itself (the varlen path,
cu_seqlens from position_ids), also for a batch of several packed rows. flash-attn is not
installable here, so its availability and kernels are faked with exact torch stand-ins:
this tests lathe's and transformers' wiring, not the kernel (bench/gpu.py G2 does, on a GPU)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from lathe.data.collate import Collator, FlashVarlen

CALLS: list[str] = []


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None) -> torch.Tensor:
    """Causal attention on (tokens, heads, dim) tensors, key/value heads repeated for GQA."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    out = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True, scale=scale)
    return out.transpose(0, 1)


def fake_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,  # type: ignore[no-untyped-def]
                softmax_scale=None, causal=True, **kwargs):
    CALLS.append("varlen")
    bounds = cu_seqlens_q.tolist()
    return torch.cat([_sdpa(q[a:b], k[a:b], v[a:b], softmax_scale) for a, b in zip(bounds, bounds[1:], strict=False)])


def fake_flash(q, k, v, dropout_p=0.0, softmax_scale=None, causal=True, **kwargs):  # type: ignore[no-untyped-def]
    CALLS.append("dense")
    return torch.stack([_sdpa(q[i], k[i], v[i], softmax_scale) for i in range(q.shape[0])])


@pytest.fixture
def fake_flash_attn(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers.modeling_flash_attention_utils as fa

    monkeypatch.setattr(fa, "_lazy_imports", lambda *a, **k: (fake_flash, fake_varlen, None, None, None))
    monkeypatch.setattr(fa, "_loaded_implementation", None)
    CALLS.clear()


def _rows() -> list[list[int]]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(5, 500, (n,), generator=g).tolist() for n in (7, 5, 6, 9)]


def _packed(seqs: list[list[int]]) -> dict[str, Any]:
    ids = [t for s in seqs for t in s]
    return {"input_ids": ids, "labels": ids, "position_ids": [p for s in seqs for p in range(len(s))]}


def test_packed_rows_attend_only_within_each_sequence(fake_flash_attn: None) -> None:
    from lathe.testing import tiny_model

    model = tiny_model("llama").eval()
    seqs = _rows()
    with torch.no_grad():
        alone = [model(input_ids=torch.tensor([s])).logits[0] for s in seqs]  # sdpa, one sequence at a time
    model.config._attn_implementation = "flash_attention_2"
    rows = [_packed(seqs[:2]), _packed(seqs[2:])]  # two packed rows of two sequences each
    batch = FlashVarlen(Collator(pad_id=0))(rows)
    assert batch["cu_seq_lens_q"].tolist() == [0, 7, 12, 16, 22, 31, 32]  # rows padded to 16; padding is its own segment
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert CALLS and set(CALLS) == {"varlen"}
    starts = [(0, 0), (0, 7), (1, 0), (1, 6)]
    for (row, start), seq, want in zip(starts, seqs, alone, strict=True):
        torch.testing.assert_close(logits[row, start:start + len(seq)], want, rtol=1e-4, atol=1e-5)

    CALLS.clear()  # without the varlen kwargs transformers runs a multi-row packed batch densely
    plain = Collator(pad_id=0)(rows)
    with torch.no_grad():
        crossed = model(**{k: v for k, v in plain.items() if k != "labels"}).logits
    assert set(CALLS) == {"dense"}
    assert not torch.allclose(crossed[0, 7:12], alone[1], atol=1e-3)


def test_flash_runs_get_the_varlen_collator_and_the_backend(monkeypatch: pytest.MonkeyPatch, cfg_of) -> None:  # type: ignore[no-untyped-def]
    import transformers.utils

    from lathe.models.loading import attention_backend
    from lathe.plugins import Plugins
    from lathe.testing import tiny_model, tiny_tokenizer
    from lathe.train.run import build_trainer

    monkeypatch.setattr(transformers.utils, "is_flash_attn_2_available", lambda: True)
    assert attention_backend(cfg_of(flash_attention=True)) == "flash_attention_2"
    tok = tiny_tokenizer()
    model = tiny_model("llama", tok)
    model.config._attn_implementation = "flash_attention_2"
    trainer = build_trainer(cfg_of(), Plugins(), model, tok, [], None)
    assert isinstance(trainer.data_collator, FlashVarlen)
    model.config._attn_implementation = "sdpa"
    assert not isinstance(build_trainer(cfg_of(), Plugins(), model, tok, [], None).data_collator, FlashVarlen)
