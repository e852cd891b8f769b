"""Vision-language chat data: rows kept as they are, images loaded and processed per batch.

Nothing is prepared or cached (``skip_prepare_dataset: true`` semantics): the collator renders
each conversation with the chat template, masks it with the text chat strategy's rules (only
trained turns' content and turn ends; :mod:`lathe.data.strategies.chat`), then runs the
processor, which loads the pixels and expands each image placeholder into the family's image
tokens. Labels follow the text tokens into the expanded sequence through a token alignment
(the expansion only inserts or replaces tokens around image placeholders), and no image token
is ever trained.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.data import images as imgs
from lathe.data.sources import load_source, local_files
from lathe.data.strategies import IGNORE
from lathe.data.strategies.chat import ChatTemplateStrategy
from lathe.data.templates import VISION
from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch

    from lathe.config import Config


class VisionChatStrategy(ChatTemplateStrategy):
    """The chat strategy with content as lists of parts (as processors' templates expect)."""

    def _resolve_template(self, options: dict[str, Any]) -> str:
        if options["chat_template"] in (None, *VISION) and options["chat_template_jinja"] is None:
            if not self.tokenizer.chat_template:
                raise LatheError("chat_template: neither the processor nor the tokenizer has a chat template; "
                                 "set chat_template: jinja with chat_template_jinja")
            return str(self.tokenizer.chat_template)
        return super()._resolve_template(options)

    def render_text(self, turns: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        as_parts = [{**t, "content": [{"type": "text", "text": t["content"]}]} if isinstance(t["content"], str)
                    else t for t in turns]
        return super().render_text(as_parts, tools)


@dataclass
class VisionRows:
    """The rows of every ``datasets`` entry, each with where it came from (for error messages)."""

    parts: list[tuple[Any, str, Path | None]] = field(default_factory=list)  # (rows, where, base folder)
    index: list[tuple[int, int]] = field(default_factory=list)  # (part, row)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        part, row = self.index[i]
        rows, where, base = self.parts[part]
        return {"row": rows[row], "where": f"{where} row {row}", "base": base}

    def subset(self, positions: list[int]) -> VisionRows:
        return VisionRows(self.parts, [self.index[i] for i in positions])


def _entry_rows(cfg: Config, key: str) -> VisionRows:
    rows = VisionRows()
    for n, entry in enumerate(getattr(cfg, key) or []):
        where = f"{key}[{n}]"
        if entry.streaming:
            raise LatheError(f"{where}.streaming: not available for vision-language data")
        files = local_files(entry, where)
        base = files[0].parent if files else None
        source = load_source(entry, where)
        rows.parts.append((source, where, base))
        rows.index += [(len(rows.parts) - 1, i) for i in range(len(source))]
    return rows


def check_images(rows: VisionRows, strategy: ChatTemplateStrategy) -> int:
    """Resolve every image reference before training: a missing file is an error naming its row."""
    count = 0
    for i in range(len(rows)):
        item = rows[i]
        try:
            count += len(images_of(strategy, item)[1])
        except LatheError as exc:
            raise LatheError(f"{item['where']}: {exc}") from None
    return count


def images_of(strategy: ChatTemplateStrategy, item: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """The conversation (image parts reduced to ``{"type": "image"}``) and its image references, in order."""
    row = item["row"]
    key = strategy.options["field_messages"]
    messages = strategy.field(row, key)
    content_key = strategy.content_key
    parted = imgs.with_parts(messages, content_key, imgs.column_images(row))
    turns = strategy.turns({**row, key: parted})
    refs = []
    for turn in turns:
        content = turn["content"]
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image":
                    refs.append(imgs.reference(part, item["base"]))
            turn["content"] = [{"type": "image"} if p.get("type") == "image" else p for p in content]
    return turns, refs


def split_rows(cfg: Config, rows: VisionRows) -> tuple[VisionRows, VisionRows | None]:
    """``val_set_size`` rows held out (a seeded choice), as for text data."""
    import random

    size = cfg.val_set_size
    if not size:
        return rows, None
    n_eval = int(size) if size >= 1 else max(1, round(size * len(rows)))
    if n_eval >= len(rows):
        raise LatheError(f"val_set_size: {size} leaves no training rows out of {len(rows)}")
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    return rows.subset(sorted(order[n_eval:])), rows.subset(sorted(order[:n_eval]))


@dataclass
class VisionData:
    train: VisionRows
    eval: VisionRows | None
    report: Any = None


def prepare_vision_data(cfg: Config, strategy: ChatTemplateStrategy) -> VisionData:
    """The rows (not tokenized: that happens per batch), with every image reference checked."""
    rows = _entry_rows(cfg, "datasets")
    if not len(rows):
        raise LatheError("datasets: no rows")
    count = check_images(rows, strategy)
    train, held = split_rows(cfg, rows)
    if cfg.test_datasets:
        held = _entry_rows(cfg, "test_datasets")
        check_images(held, strategy)
    print(f"lathe: data: {len(rows)} rows with {count} images; images are loaded and processed per batch "
          "(never cached)", file=sys.stderr)
    return VisionData(train, held)


@dataclass
class VisionCollator:
    """Rows → a batch: render, mask, process (pixels and image tokens), align labels, pad."""

    cfg: Any
    processor: Any
    strategy: ChatTemplateStrategy
    image_ids: set[int]
    dropped: int = 0

    def example(self, item: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        import torch

        turns, refs = images_of(self.strategy, item)
        text = self.strategy.tokenize_turns(turns, None)
        pictures = [imgs.load(r, self.cfg.image_size, self.cfg.image_resize_algorithm) for r in refs]
        full = self.strategy.render_text(turns)
        kwargs: dict[str, Any] = {"images": [pictures]} if pictures else {}
        out = self.processor(text=[full], return_tensors="pt", add_special_tokens=False, **kwargs)
        ids = out["input_ids"][0]
        labels = torch.full_like(ids, IGNORE)
        matcher = difflib.SequenceMatcher(None, text["input_ids"], ids.tolist(), autojunk=False)
        for a, b, n in matcher.get_matching_blocks():
            labels[b : b + n] = torch.as_tensor(text["labels"][a : a + n])
        for image_id in self.image_ids:
            labels[ids == image_id] = IGNORE
        example = {k: v for k, v in out.items() if hasattr(v, "shape")}
        example["labels"] = labels[None]
        return self._fit(example, item["where"])

    def _fit(self, example: dict[str, Any], where: str) -> dict[str, Any] | None:
        """``sequence_len`` and ``excess_length_strategy`` for a processed row."""
        length = example["input_ids"].shape[1]
        limit = self.cfg.sequence_len
        if length <= limit:
            return example
        policy = self.cfg.excess_length_strategy
        image_at = [i for i, t in enumerate(example["input_ids"][0].tolist()) if t in self.image_ids]
        if policy == "truncate" and (not image_at or image_at[-1] < limit):
            shape = example["input_ids"].shape
            return {k: v[:, :limit] if v.shape == shape else v for k, v in example.items()}
        if policy == "drop":
            self.dropped += 1
            warnings.warn(f"{where}: {length} tokens with its images, over sequence_len ({limit}); dropped "
                          f"(excess_length_strategy: drop; {self.dropped} so far)", UserWarning, stacklevel=2)
            return None
        raise LatheError(f"{where}: {length} tokens with its images, over sequence_len ({limit})"
                         + ("; truncating would cut its image tokens" if policy == "truncate" else ""))

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        examples = []
        for item in items:
            try:
                example = self.example(item)
            except LatheError as exc:
                raise LatheError(f"{item['where']}: {exc}") from None
            if example is not None:
                examples.append(example)
        if not examples:
            raise LatheError(f"every row of a batch is over sequence_len ({self.cfg.sequence_len}) with its images; "
                             "raise sequence_len or lower image_size")
        longest = max(e["input_ids"].shape[1] for e in examples)
        pad = self.processor.tokenizer.pad_token_id
        batch: dict[str, Any] = {}
        for key in dict.fromkeys(k for e in examples for k in e):
            per_token = [e[key] for e in examples if key in e and e[key].shape == e["input_ids"].shape]
            if len(per_token) == len(examples):
                fill = IGNORE if key == "labels" else pad if key == "input_ids" else 0
                batch[key] = torch.cat([torch.nn.functional.pad(v, (0, longest - v.shape[1]), value=fill)
                                        for v in per_token])
            else:  # per image (pixel values, grid sizes): rows without images have none
                batch[key] = torch.cat([e[key] for e in examples if key in e])
        return batch


@dataclass
class VisionRun:
    """What a vision-language run uses instead of the prepared text data and lathe's text collator."""

    processor: Any
    data: VisionData
    collator: VisionCollator


def tokenizer_config(cfg: Config) -> Config:
    """The config the tokenizer is loaded with: a named chat template is settled with the processor."""
    if cfg.chat_template in (None, "jinja"):
        return cfg
    return cfg.model_copy(update={"chat_template": None})


def setup_vision(cfg: Config, tokenizer: Any, config: Any, registry: dict[str, Any]) -> VisionRun:
    """Processor (its chat template for the tokenizer), rows checked, and the per-batch collator."""
    from lathe.data.strategies import build_strategy
    from lathe.data.templates import resolve_chat_template
    from lathe.models.vision import image_token_ids, load_processor

    processor = load_processor(cfg, tokenizer)
    own = getattr(processor, "chat_template", None)
    if cfg.chat_template != "jinja" and own:
        if cfg.chat_template is not None:
            print(f"lathe: chat_template: {cfg.chat_template}: the processor's own template is used (it places "
                  "the image tokens as the family expects)", file=sys.stderr)
        tokenizer.chat_template = own
    elif cfg.chat_template not in (None, "jinja"):
        tokenizer.chat_template = resolve_chat_template(cfg.chat_template, None, tokenizer.chat_template)
    processor.chat_template = tokenizer.chat_template
    strategies = []
    for n, entry in enumerate(cfg.datasets):
        if entry.type != "chat_template":
            raise LatheError(f"datasets[{n}].type: {entry.type!r}; a vision-language model trains on chat rows: "
                             "type: chat_template (docs/multimodal.md)")
        strategies.append(build_strategy(entry, f"datasets[{n}]", cfg, tokenizer,
                                         {**registry, "chat_template": VisionChatStrategy}))
    if any(s.options != strategies[0].options for s in strategies[1:]):
        raise LatheError("datasets: vision-language entries must share their chat_template options "
                         "(field_messages, roles, ...); give one entry per format")
    strategy = strategies[0]
    data = prepare_vision_data(cfg, strategy)
    return VisionRun(processor, data, VisionCollator(cfg, processor, strategy, image_token_ids(processor, config)))
