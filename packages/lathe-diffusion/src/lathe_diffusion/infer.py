"""What ``lathe inference`` does with a diffusion model (the plugin answers ``lathe_generate``).

A prompt line is one of:

- ``:complete N text`` – append N mask tokens to ``text`` and fill them in;
- ``:mask R text`` – mask a share R (0–1) of the tokens of ``text`` at random and
  fill them in again (shows what the model restores);
- text containing the mask token (``<|mask|>``) – fill those positions in place;
- any other text – append ``generation_max_length`` mask tokens and fill them in.

Filling runs :func:`lathe_diffusion.generate.unmask` over ``generation_steps`` steps
at ``generation_temperature``.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from lathe.errors import LatheError
from lathe_diffusion.config import DiffusionSection
from lathe_diffusion.generate import unmask
from lathe_diffusion.samples import mask_sample
from lathe_diffusion.trainer import mask_token_id

_COMMAND = re.compile(r"^:(complete|mask)\s+(\S+)\s?(.*)$", re.DOTALL)


def parse_command(prompt: str) -> tuple[str, float | None, str]:
    """(mode, argument, text) with mode one of complete, mask, fill."""
    match = _COMMAND.match(prompt)
    if match is None:
        if prompt.startswith((":complete", ":mask")):
            raise LatheError(f"usage: ':complete N text' or ':mask R text', got {prompt!r}")
        return "fill", None, prompt
    mode, arg, text = match.groups()
    try:
        value = int(arg) if mode == "complete" else float(arg)
    except ValueError:
        raise LatheError(f":{mode} needs a {'whole number' if mode == 'complete' else 'ratio'}, got {arg!r}") from None
    if (mode == "complete" and value < 1) or (mode == "mask" and not 0 < value <= 1):
        raise LatheError(f":{mode} {arg}: use {'N >= 1' if mode == 'complete' else '0 < R <= 1'}")
    return mode, value, text


@torch.no_grad()
def complete_prompt(
    settings: DiffusionSection, model: torch.nn.Module, tokenizer: Any, prompt: str,
    generator: torch.Generator | None = None,
) -> str:
    mode, value, text = parse_command(prompt)
    mask_id = mask_token_id(settings, tokenizer)
    device = next(model.parameters()).device
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
    if mode == "mask":
        special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids or [-1]))
        noisy = mask_sample(ids, ~special, float(value), mask_id, generator)  # type: ignore[arg-type]
        filled = unmask(model.eval(), noisy[None].to(device), mask_id, settings.generation_steps,
                        settings.generation_temperature, generator).ids[0]
        return f"masked:    {tokenizer.decode(noisy)}\ngenerated: {tokenizer.decode(filled, skip_special_tokens=True)}"
    start = len(ids)
    if mode == "complete" or not (ids == mask_id).any():
        new = int(value) if mode == "complete" else settings.generation_max_length
        ids = torch.cat([ids, torch.full((new,), mask_id, dtype=torch.long)])
    else:
        start = 0
    filled = unmask(model.eval(), ids[None].to(device), mask_id, settings.generation_steps,
                    settings.generation_temperature, generator).ids[0]
    return tokenizer.decode(filled[start:], skip_special_tokens=True)
