"""Vision-language fine-tuning on tiny random-init models of three families (Qwen2-VL, Gemma 3, Llava)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lathe.errors import LatheError
from lathe.testing import run_training
from lathe.testing.vision import FAMILIES, image_only_qwen2_vl_processor, vision_config, write_image

image_only_qwen2_vl_processor()  # the tiny Qwen2-VL's processor class, so AutoProcessor finds it


def _params(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _tower(name: str) -> bool:
    return any(part in name for part in ("visual.", "vision_tower.", "multi_modal_projector."))


@pytest.fixture(scope="module", params=FAMILIES)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any, dict]:
    """One short full fine-tune per family with the vision modules frozen."""
    family = request.param
    cfg = vision_config(tmp_path_factory.mktemp(family), family, freeze_mm_modules=True)
    return family, run_training(cfg), cfg


def test_a_chat_row_with_an_image_trains(trained: tuple[str, Any, dict]) -> None:
    _, result, cfg = trained
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    before, after = _params(Path(cfg["base_model"])), _params(result.output_dir)
    changed = [n for n in after if not torch.equal(before[n], after[n])]
    assert changed and not any(_tower(n) for n in changed)  # the language model trained, the vision side did not
    assert any(_tower(n) for n in after)


def test_the_label_mask_covers_only_assistant_text(trained: tuple[str, Any, dict]) -> None:
    family, result, _ = trained
    trainer = result.trainer
    batch = trainer.data_collator([trainer.train_dataset[0]])
    tokenizer = trainer.processing_class.tokenizer
    labels = batch["labels"][0]
    trained_ids = labels[labels != -100].tolist()
    end = "<end_of_turn>" if family == "gemma3_vision" else "<|im_end|>"
    assert tokenizer.decode(trained_ids).strip() == f"red{end}"  # Llava's "ASSISTANT: red": the token is " red"
    assert batch["input_ids"].shape == batch["labels"].shape
    assert "pixel_values" in batch


def test_the_output_reloads_in_transformers_and_answers_with_an_image(trained: tuple[str, Any, dict]) -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    _, result, _ = trained
    model = AutoModelForImageTextToText.from_pretrained(str(result.output_dir))
    processor = AutoProcessor.from_pretrained(str(result.output_dir))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what colour is it"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text], images=[[Image.new("RGB", (28, 28), (200, 30, 30))]], return_tensors="pt",
                    add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 3 or out[0, -1].item() == processor.tokenizer.eos_token_id


@pytest.mark.parametrize("family", FAMILIES)
def test_a_missing_image_is_an_error_naming_the_row(family: str, tmp_path: Path) -> None:
    import json

    cfg = vision_config(tmp_path, family)
    data = Path(cfg["datasets"][0]["path"])
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[3]["messages"][0]["content"][0]["path"] = "images/gone.png"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(LatheError, match=r"datasets\[0\] row 3: image file .*images/gone.png' not found"):
        run_training(cfg)


def _lora_names(model: Any) -> list[str]:
    return [n for n, _ in model.named_modules() if n.endswith("lora_A")]


def test_lora_targets_the_language_model_unless_a_regex_reaches_the_projector(tmp_path: Path) -> None:
    lora = {"adapter": "lora", "lora_r": 4, "lora_alpha": 8, "max_steps": 1}
    result = run_training(vision_config(tmp_path, "llava", lora_target_linear=True, **lora))
    names = _lora_names(result.trainer.model)
    assert names and not any(_tower(n) for n in names)  # CLIP's q_proj/k_proj stay untouched
    assert any("language_model" in n and "q_proj" in n for n in names)
    regex = r".*(language_model.*\.(q_proj|v_proj)|multi_modal_projector\.linear_1)"
    result = run_training(vision_config(tmp_path, "llava", lora_target_modules=regex,
                                        output_dir=str(tmp_path / "out-regex"), **lora))
    names = _lora_names(result.trainer.model)
    assert any("multi_modal_projector.linear_1" in n for n in names)
    assert not any("vision_tower" in n for n in names)


def test_packing_is_refused_for_image_batches(tmp_path: Path) -> None:
    with pytest.raises(LatheError, match="sample_packing: packing batches with images is not available for llava"):
        run_training(vision_config(tmp_path, "llava", sample_packing=True))


def test_vision_keys_on_a_text_model_are_errors(tmp_path: Path) -> None:
    from lathe.testing import base_config

    cfg = base_config(tmp_path, processor_type="AutoProcessor", image_size=28)
    with pytest.raises(LatheError, match=r"processor_type, image_size: base_model .* is not a vision-language model"):
        run_training(cfg)
    with pytest.raises(LatheError, match="skip_prepare_dataset: base_model"):
        run_training(base_config(tmp_path, skip_prepare_dataset=True, output_dir=str(tmp_path / "out2")))


def test_a_named_template_uses_the_processors_own(tmp_path: Path) -> None:
    result = run_training(vision_config(tmp_path, "qwen2_vl", chat_template="qwen2_vl", max_steps=1))
    saved = (result.output_dir / "chat_template.jinja").read_text()
    assert "<|vision_start|><|image_pad|><|vision_end|>" in saved


def test_inference_with_an_image_and_merge_lora(tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    from lathe.config import validate
    from lathe.infer import merge_lora, run_inference
    from lathe.infer_vision import VisionPrompter
    from lathe.models.trained import load_trained
    from lathe.plugins import Plugins

    raw = vision_config(tmp_path, "qwen2_vl", adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True,
                        max_steps=1)
    run_training(raw)
    cfg = validate(raw, Plugins(), source="<test>")
    image = str(write_image(tmp_path / "ask.png", (20, 200, 20)))
    answers = run_inference(cfg, Plugins(), prompt="what colour is it", images=(image,), max_new_tokens=3)
    assert len(answers) == 1
    with pytest.raises(LatheError, match="--image: image file .*gone.png' not found"):
        run_inference(cfg, Plugins(), prompt="hi", images=(str(tmp_path / "gone.png"),))

    adapted, _ = load_trained(cfg, Plugins())
    prompter = VisionPrompter.of(cfg, adapted, (image,))
    assert prompter is not None
    _, enc = prompter.encode([], "what colour is it")
    assert "pixel_values" in enc and "<|image_pad|>" in prompter.processor.tokenizer.decode(enc["input_ids"][0])
    merged_dir = merge_lora(cfg, Plugins())
    merged = AutoModelForImageTextToText.from_pretrained(str(merged_dir))
    with torch.no_grad():
        expected, got = adapted(**enc).logits, merged(**enc).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert (merged_dir / "processor_config.json").is_file()


def test_preprocess_checks_images_and_shows_the_masks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lathe.config import validate
    from lathe.data.preprocess import preprocess
    from lathe.plugins import Plugins

    cfg = validate(vision_config(tmp_path, "gemma3_vision"), Plugins(), source="<test>")
    preprocess(cfg, Plugins(), debug=True, num_examples=1)
    out = capsys.readouterr().out
    assert "nothing to cache" in out and "<image_soft_token>" in out
    assert "[[red<end_of_turn>]]" in out.replace("]][[", "")


def test_image_size_and_processor_kwargs_reach_the_processor(tmp_path: Path) -> None:
    from lathe.config import validate
    from lathe.data.strategies import strategy_registry
    from lathe.data.vision import setup_vision, tokenizer_config
    from lathe.models.loading import model_config
    from lathe.models.tokenizer import load_tokenizer
    from lathe.plugins import Plugins

    def grid(**keys: Any) -> list[int]:
        cfg = validate(vision_config(tmp_path, "qwen2_vl", **keys), Plugins(), source="<test>")
        vision = setup_vision(cfg, load_tokenizer(tokenizer_config(cfg), Plugins()), model_config(cfg),
                              strategy_registry(Plugins()))
        return vision.collator([vision.data.train[0]])["image_grid_thw"][0].tolist()

    assert grid() == [1, 2, 2]  # the 28×28 image: 2×2 patches of 14 pixels
    # 56 wide × 28 high, and a processor allowed that many pixels: 2 rows of 4 patches
    assert grid(image_size=[56, 28], processor_kwargs={"max_pixels": 56 * 56}) == [1, 2, 4]


def test_evaluate_a_trained_vision_model(tmp_path: Path) -> None:
    from lathe.config import validate
    from lathe.plugins import Plugins
    from lathe.train.run import evaluate

    raw = vision_config(tmp_path, "llava", val_set_size=0.25, max_steps=1)
    run_training(raw)
    metrics = evaluate(validate(raw, Plugins(), source="<test>"), Plugins())
    assert torch.isfinite(torch.tensor(metrics["eval_loss"]))


def test_a_batch_mixes_rows_with_and_without_images(trained: tuple[str, Any, dict]) -> None:
    _, result, _ = trained
    collate, rows = result.trainer.data_collator, result.trainer.train_dataset
    text_only = {"row": {"messages": [{"role": "user", "content": "say red"}, {"role": "assistant", "content": "red"}]},
                 "where": "datasets[0] row 99", "base": None}
    batch = collate([rows[0], text_only, rows[1]])
    alone = collate([rows[0]])
    assert batch["input_ids"].shape[0] == 3
    assert batch["pixel_values"].shape[0] == 2 * alone["pixel_values"].shape[0]  # the text row brings none
    assert (batch["labels"][1] != -100).sum() == (alone["labels"][0] != -100).sum()  # "red" and the turn end
