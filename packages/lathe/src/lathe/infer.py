"""``lathe inference`` (one prompt, a REPL, or a web UI) and ``lathe merge-lora``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lathe.errors import LatheError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from lathe.config import Config
    from lathe.plugins import Plugins


def format_prompt(cfg: Config, plugins: Plugins, tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The text the model sees for a plain prompt, in the training format of ``datasets[0]``.

    Chat datasets use the chat template. Instruction strategies (those with
    ``field_instruction``/``field_output``) tokenize the prompt with an empty response;
    without the EOS that ends it, that is exactly the prompt as trained. Other
    strategies (completion, pretraining) continue the raw text.
    """
    from lathe.data.strategies import build_strategy, strategy_registry

    entry = cfg.datasets[0]
    if entry.type == "chat_template":
        return chat_prompt(tokenizer, [{"role": "user", "content": prompt}])
    strategy = build_strategy(entry, 0, cfg, tokenizer, strategy_registry(plugins))
    options = strategy.options
    if "field_instruction" not in options or "field_output" not in options:
        return prompt
    ids = strategy.tokenize({options["field_instruction"]: prompt, options["field_output"]: ""})["input_ids"]
    if ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return tokenizer.decode(ids)  # type: ignore[no-any-return]


def chat_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    if not tokenizer.chat_template:
        raise LatheError("--chat needs a chat template: set chat_template in the config and train again")
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)  # type: ignore[return-value]


def generate(
    cfg: Config, plugins: Plugins, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, text: str,
    max_new_tokens: int, temperature: float, stream: bool = True, encoded: Any = None,
) -> str:
    """The completion of ``text`` (already formatted; ``encoded``: its processor outputs, images
    included), streamed to stdout as it is produced. A plugin answering ``lathe_generate``
    generates instead of ``model.generate``."""
    import torch
    from transformers import TextStreamer

    answer = plugins.call("lathe_generate", cfg=cfg, model=model, tokenizer=tokenizer, prompt=text)
    if answer is not None:
        if stream:
            print(answer, flush=True)
        return str(answer)
    enc = encoded if encoded is not None else tokenizer(text, return_tensors="pt", add_special_tokens=False)
    device = next(model.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    sampling: dict[str, Any] = {"do_sample": False}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature}
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None  # type: ignore[arg-type]
    with torch.no_grad():
        output = model.generate(  # type: ignore[operator]
            **enc,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            streamer=streamer,
            **sampling,
        )
    new = output[0, enc["input_ids"].shape[1]:]
    return tokenizer.decode(new, skip_special_tokens=True)  # type: ignore[no-any-return]


def run_inference(
    cfg: Config, plugins: Plugins, prompt: str | None = None, chat: bool = False,
    max_new_tokens: int = 256, temperature: float = 0.0, gradio: bool = False, images: tuple[str, ...] = (),
) -> list[str]:
    """Answer ``prompt``, or read prompts from stdin until EOF/``exit``; returns the answers.
    ``images`` (a vision-language model) go with the first user message."""
    from lathe.infer_vision import VisionPrompter
    from lathe.models.trained import load_trained

    try:
        model, tokenizer = load_trained(cfg, plugins)
        vision = VisionPrompter.of(cfg, model, images)
        if gradio:
            _serve_gradio(cfg, plugins, model, tokenizer, chat, max_new_tokens, temperature)
            return []
        messages: list[dict[str, str]] = []
        answers = []
        commands = plugins.call("lathe_inference_commands", cfg=cfg)

        def answer(user: str) -> str:
            name, _, rest = user[1:].partition(" ")
            if user.startswith(":") and name in commands:
                reply = str(commands[name](model, tokenizer, rest))
                print(reply, flush=True)
                answers.append(reply)
                return reply
            encoded = None
            if vision is not None:
                text, encoded = vision.encode(messages if chat else [], user)
                if chat:
                    messages.append({"role": "user", "content": user})
            elif chat:
                messages.append({"role": "user", "content": user})
                text = chat_prompt(tokenizer, messages)
            else:
                text = format_prompt(cfg, plugins, tokenizer, user)
            reply = generate(cfg, plugins, model, tokenizer, text, max_new_tokens, temperature, encoded=encoded)
            if chat:
                messages.append({"role": "assistant", "content": reply})
            answers.append(reply)
            return reply

        if prompt is not None:
            answer(prompt)
            return answers
        print("lathe inference: type a prompt and Enter; Ctrl-D or 'exit' quits.", file=sys.stderr)
        if commands:
            print(f"commands: {', '.join(':' + c for c in sorted(commands))}", file=sys.stderr)
        while True:
            try:
                line = input("> ")
            except EOFError:
                break
            if line.strip() in ("exit", "quit"):
                break
            if line.strip():
                answer(line)
        return answers
    finally:
        plugins.call("lathe_post_train_unload", cfg=cfg)


def _serve_gradio(cfg: Config, plugins: Plugins, model: Any, tokenizer: Any, chat: bool,
                  max_new_tokens: int, temperature: float) -> None:
    try:
        import gradio as gr
    except ImportError as exc:
        raise LatheError("--gradio needs gradio: pip install gradio") from exc

    def respond(message: str, history: list[dict[str, str]]) -> str:
        if chat:
            text = chat_prompt(tokenizer, [*history, {"role": "user", "content": message}])
        else:
            text = format_prompt(cfg, plugins, tokenizer, message)
        return generate(cfg, plugins, model, tokenizer, text, max_new_tokens, temperature, stream=False)

    gr.ChatInterface(respond, type="messages", title=f"lathe: {cfg.output_dir}").launch()


def merge_lora(cfg: Config, plugins: Plugins) -> Path:
    """Merge the adapter in ``output_dir`` into its base; write ``output_dir/merged``."""
    from lathe.infer_vision import save_processor
    from lathe.models.trained import has_adapter, load_trained, trained_dir

    out = trained_dir(cfg)
    if not has_adapter(cfg):
        raise LatheError(f"output_dir {out} holds a full model, not an adapter: there is nothing to merge")
    try:
        model, tokenizer = load_trained(cfg, plugins, quantized=False)
        merged = model.merge_and_unload()  # type: ignore[operator]
        target = out / "merged"
        merged.save_pretrained(str(target), safe_serialization=True)
        tokenizer.save_pretrained(str(target))
        save_processor(out, target)
        plugins.call("lathe_post_merge", cfg=cfg, model=merged, path=target)
    finally:
        plugins.call("lathe_post_train_unload", cfg=cfg)
    print(f"lathe: merged model written to {target}", file=sys.stderr)
    return target
