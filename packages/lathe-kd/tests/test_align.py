"""Alignment: teacher row j (the distribution over token j) scores student position j − 1."""

import pytest
import torch

from lathe.testing import tiny_model
from lathe_kd.align import align
from lathe_kd.loss import chunked_kd_loss


def test_shift_and_packing_boundaries() -> None:
    from lathe.data.collate import mask_boundaries

    labels = torch.tensor([[-100, 11, 12, -100, 21, 22]])
    ids = torch.arange(6).view(1, 6, 1)
    lp = torch.zeros(1, 6, 1)
    pos = torch.tensor([[0, 1, 2, 0, 1, 2]])
    a = align(labels, ids, lp)
    assert a.positions.tolist() == [[True, True, False, True, True]]
    assert a.labels.tolist() == [11, 12, 21, 22]
    assert a.teacher_ids[:, 0].tolist() == [1, 2, 4, 5]  # row i + 1 for position i
    # sample B's first token is trained, but the core's collator wrapper masks it at the boundary
    labels2 = mask_boundaries({"labels": torch.tensor([[-100, 11, 12, 20, 21, 22]]), "position_ids": pos})["labels"]
    assert align(labels2, ids, lp).labels.tolist() == [11, 12, 21, 22]  # ...so it is not predicted from A


def _student_and_batch():  # type: ignore[no-untyped-def]
    model = tiny_model("llama").eval()
    ids = torch.randint(0, 500, (2, 9), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :3] = -100
    with torch.no_grad():
        hidden = model.get_decoder()(input_ids=ids).last_hidden_state
        own = torch.log_softmax(model.get_output_embeddings()(hidden), -1)
    return model, ids, labels, hidden, own


@pytest.mark.parametrize("shift", [1, 0, 2])
def test_only_the_documented_alignment_matches_a_teacher_identical_to_the_student(shift: int) -> None:
    """Teacher = the student itself, written in the documented convention: row j = prediction of token j."""
    model, ids, labels, hidden, own = _student_and_batch()
    vocab = own.shape[-1]
    rows = torch.full_like(own, float("-inf"))
    rows[:, shift:] = own[:, : own.shape[1] - shift]  # shift 1 is the documented convention
    a = align(labels, torch.arange(vocab).expand(*ids.shape, vocab), rows)
    out = chunked_kd_loss(hidden[:, :-1][a.positions], model.get_output_embeddings(), a.labels, a.teacher_ids, a.teacher_lp)
    if shift == 1:
        assert out.kd.item() == pytest.approx(0.0, abs=1e-6)
    else:
        assert out.kd.item() > 0.01
