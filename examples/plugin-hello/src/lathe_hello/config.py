"""The key lathe-hello adds to the config."""

from pydantic import Field

from lathe.config import ConfigModel


class HelloConfig(ConfigModel):
    hello_grad_histogram: bool = Field(
        True, description="Write output_dir/grad_norm_histogram.jsonl: per optimizer step, a histogram of the "
                          "parameters' gradient norms (after clipping).")
