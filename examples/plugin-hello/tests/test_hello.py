"""lathe-hello: lathe's conformance suite, and the gradient-norm histogram it writes."""

import json
import math
from pathlib import Path

from lathe.testing import base_config, run_training
from lathe.testing.conformance import PluginConformance
from lathe_hello.histogram import LABELS, histogram


class TestHelloConformance(PluginConformance):
    plugin_name = "hello"
    distribution = "lathe-hello"
    config_snippet = "plugins: [hello]\nhello_grad_histogram: true\n"


def test_histogram_buckets_by_decade() -> None:
    counts = histogram([1e-9, 5e-7, 3e-5, 0.5, 0.5, 7.0, 1e3, math.nan])
    assert list(counts.values()) == [1, 1, 1, 0, 2, 1, 2] and list(counts) == list(LABELS)


def test_one_line_per_step_counting_every_trained_tensor(tmp_path: Path) -> None:
    result = run_training(base_config(tmp_path, plugins=["hello"], max_steps=3, max_grad_norm=1.0))
    lines = [json.loads(line) for line in (result.output_dir / "grad_norm_histogram.jsonl").read_text().splitlines()]
    trained = [n for n, p in result.trainer.model.named_parameters() if p.requires_grad]
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert all(sum(line["histogram"].values()) == len(trained) for line in lines)
    assert all(line["max_param"] in trained and 0 < line["max"] <= 1.0 + 1e-4 for line in lines)  # after clipping


def test_switched_off_writes_nothing(tmp_path: Path) -> None:
    result = run_training(base_config(tmp_path, plugins=["hello"], hello_grad_histogram=False, max_steps=1))
    assert not (result.output_dir / "grad_norm_histogram.jsonl").exists()
