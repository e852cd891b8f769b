"""What the chunked loss keeps for the backward pass does not grow with the vocabulary."""

import torch

from lathe_kd.loss import chunked_kd_loss


def _saved_bytes(vocab: int, chunk: int, n: int = 512, hidden: int = 16, k: int = 4) -> int:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, hidden, generator=g, requires_grad=True)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    labels = torch.randint(0, vocab, (n,), generator=g)
    ids = torch.randint(0, vocab, (n, k), generator=g)
    lp = torch.log_softmax(torch.randn(n, k, generator=g), -1)
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = chunked_kd_loss(h, head, labels, ids, lp, chunk_size=chunk, beta=0.5, ce_alpha=1.0)
    loss.loss.backward()
    return total


def test_saved_activations_do_not_scale_with_vocab() -> None:
    small, large = _saved_bytes(vocab=256, chunk=64), _saved_bytes(vocab=4096, chunk=64)
    assert large < small * 1.2  # only inputs of each chunk are kept, not its logits
    assert large < 512 * 4096 * 4 / 20  # far below one float32 copy of the full logits
