"""What ``lathe inference`` does with a diffusion model.

- A plain prompt (the plugin answers ``lathe_generate``): the prompt, formatted as in
  training, is followed by ``generation_max_length`` mask tokens that are filled in.
  When the prompt already holds mask tokens (``<|mask|>``), those are filled in place.
- ``:complete N text`` (a ``lathe_inference_commands`` command): append N mask tokens
  to the raw ``text`` and fill them in.
- ``:mask R text``: mask a share R (0 < R ≤ 1) of the tokens of ``text`` at random and
  let the model restore them; prints the masked and the generated text.

Filling runs :func:`lathe_diffusion.generate.unmask` over ``generation_steps`` steps at
``generation_temperature``.
"""

from __future__ import annotations

from typing import Any

import torch

from lathe.errors import LatheError
from lathe_diffusion.config import DiffusionSection
from lathe_diffusion.generate import unmask
from lathe_diffusion.samples import mask_sample
from lathe_diffusion.trainer import mask_token_id


def _split(command: str, rest: str) -> tuple[str, str]:
    arg, _, text = rest.strip().partition(" ")
    if not arg:
        raise LatheError(f"usage: ':{command} {'N' if command == 'complete' else 'R'} text'")
    return arg, text


def _ids(tokenizer: Any, text: str) -> torch.Tensor:
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)


def _unmask(settings: DiffusionSection, model: torch.nn.Module, ids: torch.Tensor, mask_id: int,
            generator: torch.Generator | None) -> torch.Tensor:
    device = next(model.parameters()).device
    out = unmask(model.eval(), ids[None].to(device), mask_id, settings.generation_steps,
                 settings.generation_temperature, generator)
    return out.ids[0].cpu()


@torch.no_grad()
def fill(settings: DiffusionSection, model: torch.nn.Module, tokenizer: Any, prompt: str,
         new_tokens: int | None = None, generator: torch.Generator | None = None) -> str:
    """Fill the prompt's mask tokens, or append ``new_tokens`` (default generation_max_length) and fill those."""
    mask_id = mask_token_id(settings, tokenizer)
    ids = _ids(tokenizer, prompt)
    if new_tokens is None and (ids == mask_id).any():
        return str(tokenizer.decode(_unmask(settings, model, ids, mask_id, generator), skip_special_tokens=True))
    count = settings.generation_max_length if new_tokens is None else new_tokens
    ids = torch.cat([ids, torch.full((count,), mask_id, dtype=torch.long)])
    filled = _unmask(settings, model, ids, mask_id, generator)
    return str(tokenizer.decode(filled[len(ids) - count:], skip_special_tokens=True))


def complete_command(settings: DiffusionSection, model: torch.nn.Module, tokenizer: Any, rest: str,
                     generator: torch.Generator | None = None) -> str:
    """``:complete N text``."""
    arg, text = _split("complete", rest)
    if not arg.isdigit() or int(arg) < 1:
        raise LatheError(f":complete needs a whole number N >= 1 of new tokens, got {arg!r}")
    return fill(settings, model, tokenizer, text, int(arg), generator)


@torch.no_grad()
def mask_command(settings: DiffusionSection, model: torch.nn.Module, tokenizer: Any, rest: str,
                 generator: torch.Generator | None = None) -> str:
    """``:mask R text``."""
    arg, text = _split("mask", rest)
    try:
        ratio = float(arg)
    except ValueError:
        ratio = -1.0
    if not 0 < ratio <= 1:
        raise LatheError(f":mask needs a ratio R with 0 < R <= 1, got {arg!r}")
    mask_id = mask_token_id(settings, tokenizer)
    ids = _ids(tokenizer, text)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids or [-1]))
    noisy = mask_sample(ids, ~special, ratio, mask_id, generator)
    filled = _unmask(settings, model, noisy, mask_id, generator)
    return f"masked:    {tokenizer.decode(noisy)}\ngenerated: {tokenizer.decode(filled, skip_special_tokens=True)}"


def commands(settings: DiffusionSection) -> dict[str, Any]:
    return {
        "complete": lambda model, tokenizer, rest: complete_command(settings, model, tokenizer, rest),
        "mask": lambda model, tokenizer, rest: mask_command(settings, model, tokenizer, rest),
    }
