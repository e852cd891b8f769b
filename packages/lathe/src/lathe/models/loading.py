"""Building the causal LM a run trains: config, precision, attention, weights, vocabulary.

Hook order (DESIGN.md §2): ``lathe_pre_model_load`` (fired by the run, before the
tokenizer) → build → ``lathe_post_model_build``
→ adapters (``lathe_pre_adapter_load`` / ``lathe_post_adapter_load``) →
``lathe_post_model_load``. The tokenizer is loaded by :mod:`lathe.models.tokenizer`
before this runs (so plugins' added tokens are already in it).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch

from lathe.errors import LatheError

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from lathe.config import Config
    from lathe.plugins import Plugins


def _note(message: str) -> None:
    print(f"lathe: {message}", file=sys.stderr)


def bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def use_bf16(cfg: Config) -> bool:
    """``bf16: auto`` means bf16 where the hardware supports it, float32 elsewhere."""
    if cfg.bf16 == "auto":
        return not cfg.fp16 and bf16_supported()
    return bool(cfg.bf16)


def weights_dtype(cfg: Config) -> torch.dtype:
    """The dtype the weights are loaded in.

    bf16 → bfloat16 weights. fp16 keeps trainable (full fine-tune) weights in float32
    and lets autocast run the matmuls in half precision, since fp16 master weights
    cannot be unscaled; a frozen base under an adapter is loaded in float16.
    """
    if use_bf16(cfg):
        return torch.bfloat16
    if cfg.fp16:
        return torch.float16 if cfg.adapter else torch.float32
    return torch.float32


def attention_backend(cfg: Config) -> str:
    """The attention implementation to build with; flash attention falls back to sdpa."""
    from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available

    wanted = cfg.attn_implementation or "sdpa"
    available = {
        "flash_attention_2": is_flash_attn_2_available,
        "flash_attention_3": is_flash_attn_3_available,
    }
    if wanted in available and not available[wanted]():
        package = "flash-attn" if wanted == "flash_attention_2" else "flash-attn-3 (flash_attn_interface)"
        _note(
            f"attn_implementation: {wanted} is unavailable here ({package} not installed or no "
            "supported GPU); falling back to sdpa"
        )
        return "sdpa"
    if wanted == "flex_attention" and not hasattr(torch.nn.attention, "flex_attention"):
        raise LatheError("attn_implementation: flex_attention needs torch >= 2.5 with torch.nn.attention.flex_attention")
    return wanted


def plugin_head(cfg: Config, plugins: Plugins | None) -> tuple[Any, dict[str, Any]] | None:
    """A plugin's ``lathe_model_class`` answer: (transformers class, model-config attributes), or None."""
    answer = plugins.call("lathe_model_class", cfg=cfg) if plugins is not None else None
    if answer is not None and cfg.model_type:
        raise LatheError(f"model_type: {cfg.model_type} is set, but this run builds {answer[0].__name__} "
                         "(the head a plugin's keys ask for); remove model_type")
    return answer  # type: ignore[no-any-return]


def model_config(cfg: Config, plugins: Plugins | None = None) -> PretrainedConfig:
    """AutoConfig from ``base_model_config`` (or ``base_model``) with the config overrides applied,
    then the attributes a plugin's model class needs (``num_labels``)."""
    from transformers import AutoConfig

    source = cfg.base_model_config or cfg.base_model
    try:
        config = AutoConfig.from_pretrained(
            source, trust_remote_code=cfg.trust_remote_code, revision=cfg.revision_of_model, token=cfg.hub_token
        )
    except ValueError as exc:
        if "trust_remote_code" in str(exc) and not cfg.trust_remote_code:
            raise LatheError(
                f"base_model {source!r} ships its own code; set trust_remote_code: true to run it "
                "(only for models you trust)"
            ) from exc
        raise LatheError(f"base_model_config/base_model {source!r}: {exc}") from exc
    except OSError as exc:
        raise LatheError(f"base_model {source!r}: no model config found ({exc})") from exc
    for key, value in (cfg.overrides_of_model_config or {}).items():
        if not hasattr(config, key):
            _note(f"overrides_of_model_config: {key!r} is not a field of {type(config).__name__}; setting it anyway")
        setattr(config, key, value)
    head = plugin_head(cfg, plugins)
    for key, value in (head[1] if head else {}).items():
        setattr(config, key, value)
    return config


def require_bitsandbytes(what: str) -> None:
    """Fail with a clear message (naming the extra to install) when bitsandbytes is absent."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise LatheError(f"{what} needs the bitsandbytes package: pip install 'lathe[bnb]'") from exc


# transformers' names of a classification model's head (``*ForSequenceClassification`` /
# ``*ForTokenClassification``): a new layer that is trained whole, never quantized or LoRA-wrapped
CLASSIFIER_HEADS = ["score", "classifier"]


def classifier_task(name: str) -> str | None:
    """peft's task type of a classification class or model name (``SEQ_CLS``/``TOKEN_CLS``), else None."""
    for suffix, task in (("ForSequenceClassification", "SEQ_CLS"), ("ForTokenClassification", "TOKEN_CLS")):
        if name.endswith(suffix):
            return task
    return None


def quantization_config(cfg: Config, classifier: bool = False) -> Any:
    """A bitsandbytes config for ``load_in_4bit`` / ``load_in_8bit``, or None.

    bitsandbytes >= 0.45 quantizes and runs ``Linear4bit`` / ``Linear8bitLt`` on CPU as
    well as on CUDA, so QLoRA trains (slowly) on a machine without a GPU.
    """
    if not (cfg.load_in_4bit or cfg.load_in_8bit):
        return None
    key = "load_in_4bit" if cfg.load_in_4bit else "load_in_8bit"
    require_bitsandbytes(f"{key}: true")
    from transformers import BitsAndBytesConfig

    if cfg.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=CLASSIFIER_HEADS if classifier else None)
    compute = cfg.bnb_4bit_compute_dtype or ("bfloat16" if use_bf16(cfg) else "float16" if cfg.fp16 else "float32")
    from lathe.distributed.engine import fsdp_enabled

    # under FSDP the packed 4-bit weights are stored in the compute dtype, so FSDP shards and
    # gathers them like the model's other parameters (QLoRA + FSDP, GPU only)
    storage = {"bnb_4bit_quant_storage": getattr(torch, compute)} if fsdp_enabled(cfg) else {}
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=cfg.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, compute),
        llm_int8_skip_modules=CLASSIFIER_HEADS if classifier else None,  # the head stays a plain trainable Linear
        **storage,
    )


def quantized_device() -> Any:
    """Where quantized weights live: the current CUDA device, else the CPU."""
    return torch.cuda.current_device() if torch.cuda.is_available() else "cpu"


def model_class(cfg: Config, config: PretrainedConfig | None = None, plugins: Plugins | None = None) -> Any:
    """The class a plugin's ``lathe_model_class`` names; else ``model_type``: the named transformers
    class; unset, AutoModelForImageTextToText for a vision-language model (its config has a
    vision_config), else AutoModelForCausalLM."""
    import transformers

    from lathe.models.vision import is_multimodal

    head = plugin_head(cfg, plugins)
    if head is not None:
        return head[0]

    default = "AutoModelForImageTextToText" if config is not None and is_multimodal(config) else "AutoModelForCausalLM"
    name = cfg.model_type or default
    cls = getattr(transformers, name, None)
    if cls is None:
        raise LatheError(f"model_type: transformers {transformers.__version__} has no class {name}")
    return cls


def build_model(cfg: Config, config: PretrainedConfig, plugins: Plugins | None = None) -> PreTrainedModel:
    """The model with its weights; with ``quantize_moe_experts`` (and ``load_in_4bit``) its fused
    MoE experts are then stored in 4 bits (:mod:`lathe.models.moe`)."""
    from lathe.models.moe_kernels import apply_use_kernels, check_model_has_experts

    model = _build_model(cfg, config, plugins)
    check_model_has_experts(cfg, model)
    apply_use_kernels(cfg, model)
    if cfg.quantize_moe_experts and cfg.load_in_4bit:
        from lathe.models.moe import quantize_experts

        quantize_experts(cfg, model)
    return model


def _build_model(cfg: Config, config: PretrainedConfig, plugins: Plugins | None) -> PreTrainedModel:
    """Random weights from the config, or the pretrained weights (safetensors unless allowed)."""
    from lathe.models.moe_kernels import build_kwargs

    cls = model_class(cfg, config, plugins)
    dtype = weights_dtype(cfg)
    attn = attention_backend(cfg)
    experts = build_kwargs(cfg)
    if cfg.random_init_weights:
        torch.manual_seed(cfg.seed)
        if hasattr(cls, "from_config"):  # an Auto class
            return cls.from_config(
                config, dtype=dtype, attn_implementation=attn, trust_remote_code=cfg.trust_remote_code, **experts
            )
        return cls._from_config(config, dtype=dtype, attn_implementation=attn, **experts)
    kwargs: dict[str, Any] = dict(
        config=config,
        dtype=dtype,
        attn_implementation=attn,
        **experts,
        trust_remote_code=cfg.trust_remote_code,
        use_safetensors=None if cfg.allow_pickle_weights else True,
        revision=cfg.revision_of_model,
        token=cfg.hub_token,
    )
    kwargs.update(cfg.overrides_of_model_kwargs or {})
    quant = quantization_config(cfg, classifier=classifier_task(cls.__name__) is not None)
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": quantized_device()})
    try:
        return cls.from_pretrained(cfg.base_model, **kwargs)
    except OSError as exc:
        hint = "" if cfg.allow_pickle_weights else (
            " (only safetensors weights are loaded; set allow_pickle_weights: true for .bin files you trust)"
        )
        raise LatheError(f"base_model {cfg.base_model!r}: could not load weights: {exc}{hint}") from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise LatheError(f"base_model {cfg.base_model!r} needs trust_remote_code: true") from exc
        raise


@torch.no_grad()
def resize_embeddings(model: PreTrainedModel, vocab: int) -> int:
    """Grow input (and untied output) embeddings to ``vocab`` rows; new rows are the mean
    of the old ones. Returns the number of rows added (the vocabulary never shrinks)."""
    old = model.get_input_embeddings().weight.shape[0]
    if vocab <= old:
        return 0
    model.resize_token_embeddings(vocab, mean_resizing=False)
    for module in {id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}.values():
        weight = module.weight
        weight[old:] = weight[:old].float().mean(dim=0).to(weight.dtype)
    return vocab - old


def set_special_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(tokenizer, name)
        if value is not None:
            setattr(model.config, name, value)
            if getattr(model, "generation_config", None) is not None:
                setattr(model.generation_config, name, value)


def enable_gradient_checkpointing(cfg: Config, model: PreTrainedModel) -> None:
    if not cfg.gradient_checkpointing:
        return
    kwargs = {"use_reentrant": False, **(cfg.gradient_checkpointing_kwargs or {})}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.20
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.config.use_cache = False
    if cfg.adapter:
        # With a frozen base the embedding output has no grad, which reentrant checkpointing needs.
        model.enable_input_require_grads()


def load_model(cfg: Config, tokenizer: PreTrainedTokenizerBase, plugins: Plugins) -> torch.nn.Module:
    """The model to train: built, resized to the tokenizer, adapters attached, hooks fired.

    The caller fires ``lathe_pre_model_load`` before loading the tokenizer (DESIGN.md §2).
    """
    from lathe.models.adapters import attach_adapter
    from lathe.models.freeze import freeze_except
    from lathe.models.lora_kernels import apply_lora_kernels
    from lathe.models.tiled_mlp import apply_tiled_mlp
    from lathe.models.vision import freeze_mm_modules

    model = build_model(cfg, model_config(cfg, plugins), plugins)
    added = resize_embeddings(model, len(tokenizer))
    if added:
        _note(f"resized the embeddings by {added} rows to the tokenizer's {len(tokenizer)} tokens")
    set_special_token_ids(model, tokenizer)
    plugins.call("lathe_post_model_build", cfg=cfg, model=model)
    enable_gradient_checkpointing(cfg, model)
    if cfg.adapter:
        plugins.call("lathe_pre_adapter_load", cfg=cfg, model=model)
        model = attach_adapter(cfg, model, new_tokens=added > 0 or bool(cfg.tokens))
        plugins.call("lathe_post_adapter_load", cfg=cfg, model=model)
    freeze_except(cfg, model)
    freeze_mm_modules(cfg, model)
    for applied in apply_lora_kernels(cfg, model):
        _note(f"{applied}: LoRA projections run through lathe's fused autograd functions")
    if apply_tiled_mlp(cfg, model):
        _note("tiled_mlp: decoder MLPs run over sequence shards, recomputed in backward")
    plugins.call("lathe_post_model_load", cfg=cfg, model=model, tokenizer=tokenizer)
    return model
