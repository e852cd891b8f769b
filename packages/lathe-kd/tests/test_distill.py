"""A student trained toward a synthetic teacher's top-k lowers its KL to the teacher."""

import torch

from lathe.testing import tiny_model
from lathe_kd.align import align
from lathe_kd.loss import chunked_kd_loss

K = 8


def _teacher_rows(teacher, ids):  # type: ignore[no-untyped-def]
    """Top-k rows in the documented convention: row j is the teacher's distribution over token j."""
    with torch.no_grad():
        lp = torch.log_softmax(teacher(input_ids=ids).logits, -1)
    top_lp, top_ids = lp.topk(K, dim=-1)
    rows_lp = torch.full_like(top_lp, float("-inf"))
    rows_ids = torch.zeros_like(top_ids)
    rows_lp[:, 1:], rows_ids[:, 1:] = top_lp[:, :-1], top_ids[:, :-1]
    return rows_ids, rows_lp


def _kd(student, ids, labels, rows_ids, rows_lp):  # type: ignore[no-untyped-def]
    a = align(labels, rows_ids, rows_lp)
    hidden = student.get_decoder()(input_ids=ids).last_hidden_state[:, :-1][a.positions]
    return chunked_kd_loss(hidden, student.get_output_embeddings(), a.labels, a.teacher_ids, a.teacher_lp, chunk_size=16)


def test_student_moves_toward_teacher() -> None:
    torch.manual_seed(0)
    teacher = tiny_model("llama", seed=1).eval()
    student = tiny_model("llama", seed=2)
    with torch.no_grad():  # a peaked teacher, so there is something to learn
        teacher.get_output_embeddings().weight.mul_(8.0)
    ids = torch.randint(0, 512, (8, 12), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    rows_ids, rows_lp = _teacher_rows(teacher, ids)
    with torch.no_grad():
        before = _kd(student, ids, labels, rows_ids, rows_lp).kd.item()
    opt = torch.optim.AdamW(student.parameters(), lr=3e-3)
    for _ in range(40):
        opt.zero_grad()
        _kd(student, ids, labels, rows_ids, rows_lp).loss.backward()
        opt.step()
    with torch.no_grad():
        after = _kd(student, ids, labels, rows_ids, rows_lp).kd.item()
    assert after < 0.3 * before, (before, after)
