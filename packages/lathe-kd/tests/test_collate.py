"""Teacher columns padded into batch tensors next to lathe's own collation."""

import torch

from lathe_kd.collate import KDCollator, pad_teacher


def test_pad_teacher_right_and_left() -> None:
    ids = [[[1, 2], [], [3]], [[4]]]
    lps = [[[-0.1, -2.0], [], [-0.5]], [[-0.3]]]
    t_ids, t_lp = pad_teacher(ids, lps, length=4)
    assert t_ids.shape == (2, 4, 2)
    assert t_ids[0, 0].tolist() == [1, 2] and t_ids[0, 2].tolist() == [3, 0]
    assert torch.isinf(t_lp[0, 1]).all() and torch.isinf(t_lp[1, 1:]).all()
    assert t_lp[0, 2, 0].item() == -0.5 and torch.isinf(t_lp[0, 2, 1])
    left_ids, _ = pad_teacher(ids, lps, length=4, left=True)
    assert left_ids[1, 3].tolist() == [4, 0] and left_ids[0, 1].tolist() == [1, 2]


def _base(features):  # type: ignore[no-untyped-def]
    assert all("teacher_ids" not in f for f in features)  # lathe's collator never sees them
    n = max(len(f["input_ids"]) for f in features)
    return {"input_ids": torch.tensor([f["input_ids"] + [0] * (n - len(f["input_ids"])) for f in features])}


def test_collator_adds_or_drops_teacher_columns() -> None:
    feats = [{"input_ids": [5, 6, 7], "teacher_ids": [[], [1], [2]], "teacher_logprobs": [[], [-0.1], [-0.2]]},
             {"input_ids": [5], "teacher_ids": [[]], "teacher_logprobs": [[]]}]
    batch = KDCollator(_base, keep_teacher=True, left=False)(feats)
    assert batch["teacher_ids"].shape == (2, 3, 1)
    plain = KDCollator(_base, keep_teacher=False, left=False)(feats)
    assert set(plain) == {"input_ids"}
