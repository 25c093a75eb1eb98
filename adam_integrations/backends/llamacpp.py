"""LlamaCppModel: GGUF chat models run in-process by llama.cpp (llama-cpp-python).

Loads a GGUF file in place (no conversion). The GGUF's header is read first
(``sharing.gguf_header``), so a file that is not GGUF or is cut short is refused with a
clear error before llama.cpp touches it. Chat goes through the GGUF's own Jinja chat
template with the same prompt assembly, output parsing and usage as the transformers
backend (``core.prompt``, ``core.decoding``). Structured output and forced tool calls are
constrained by llama.cpp grammars built from the JSON schemas.

Generation is a plain generator on the caller's thread: leaving the loop stops it at
the next token. One lock per model keeps requests from interleaving.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adam_integrations.catalog.qwen3 import with_qwen3_sampling
from adam_integrations.core.backend import EmbeddingKind, ModelBackend
from adam_integrations.core.chat_template import render_chat_template
from adam_integrations.core.decoding import ChunkAssembler
from adam_integrations.core.errors import (
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedOperationError,
)
from adam_integrations.core.output import ResponseParser
from adam_integrations.core.prompt import TemplateTraits, opens_thinking, template_inputs
from adam_integrations.core.resolver import ModelSource, Purpose, resolve
from adam_integrations.core.tools import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ToolSpec,
    bounded_for_generation,
)
from adam_integrations.core.types import ChatMessage, Chunk, GenerationConfig, ModelInfo
from adam_integrations.sharing.gguf_header import GGUFHeader, read_gguf_header

DEFAULT_CONTEXT = 8192  # capped by the model's own context length
DEFAULT_REPEAT_PENALTY = 1.1


@dataclass
class _Loaded:
    llama: Any
    header: GGUFHeader
    template: str | None
    traits: TemplateTraits
    variables: dict[str, str]
    load_seconds: float


class LlamaCppModel(ModelBackend):
    """A GGUF model on llama.cpp, in-process.

    Example:
        >>> from adam_integrations.backends.llamacpp import LlamaCppModel
        >>> model = LlamaCppModel("smollm2")          # the embedded SmolLM2 GGUF
        >>> model.chat([{"role": "user", "content": "Hi"}], max_tokens=8).text  # doctest: +SKIP

    Args:
        model: a reference to a GGUF file (path, embedded name) or a resolved source.
        n_ctx: context length; default the model's, capped at 8192.
        n_threads: CPU threads; default the number of physical cores.
        n_gpu_layers: layers to offload; default all when llama.cpp was built with a GPU.
        chat_template: a Jinja chat template to use instead of the GGUF's own.
    """

    name = "llamacpp"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelSource | None = None,
        *,
        purpose: Purpose = "chat",
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        chat_template: str | None = None,
    ) -> None:
        self.source = model if isinstance(model, ModelSource) else resolve(model, purpose=purpose)
        if self.source.kind != "gguf":
            raise ModelNotFoundError(
                f"llama.cpp runs GGUF files, and {self.source.name!r} is a {self.source.kind} "
                "model; name a .gguf file, or use model_type='huggingface' for this one")
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._n_gpu_layers = n_gpu_layers
        self._chat_template = chat_template
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded"
        return f"LlamaCppModel({self.source.name!r}, {state})"

    # -- lifecycle -------------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        self._ensure_loaded()

    def unload(self) -> None:
        with self._load_lock, self._run_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None:
            loaded.llama.close()

    def _ensure_loaded(self) -> _Loaded:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> _Loaded:
        started = time.perf_counter()
        path = self.source.location
        header = read_gguf_header(path)  # refuses non-GGUF and truncated files first
        try:
            from llama_cpp import Llama
        except ImportError as error:
            raise ModelLoadError(
                "the llama.cpp backend needs llama-cpp-python; install it with "
                "pip install 'adam-integrations[llamacpp]'") from error

        context = min(header.context_length or DEFAULT_CONTEXT, self._n_ctx or DEFAULT_CONTEXT)
        try:
            llama = Llama(model_path=path, n_ctx=context, n_threads=self._n_threads
                          or _physical_cores(), n_gpu_layers=_gpu_layers(self._n_gpu_layers),
                          verbose=False)
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(
                f"llama.cpp could not load {path} (architecture "
                f"{header.architecture!r}): {error}. A newer llama-cpp-python may support it."
            ) from error
        template = self._chat_template or header.metadata.get("tokenizer.chat_template")
        variables = {
            "bos_token": llama.detokenize([llama.token_bos()], special=True).decode(
                errors="replace"),
            "eos_token": llama.detokenize([llama.token_eos()], special=True).decode(
                errors="replace"),
        }
        return _Loaded(llama=llama, header=header, template=template,
                       traits=TemplateTraits.of(template), variables=variables,
                       load_seconds=time.perf_counter() - started)

    def info(self) -> ModelInfo:
        loaded = self._ensure_loaded()
        header = loaded.header
        return ModelInfo(
            name=self.source.name, backend=self.name, family=header.architecture,
            parameter_count=loaded.llama.n_params() if hasattr(loaded.llama, "n_params")
            else None,
            context_window=loaded.llama.n_ctx(),
            capabilities=("completion", "chat", "tools",
                          *(("thinking",) if loaded.traits.thinking else ())),
            path=self.source.location, format="gguf", quantization=header.quantization,
            device="gpu" if _gpu_layers(self._n_gpu_layers) else "cpu",
            details={"explanation": self.source.explanation,
                     "load_seconds": loaded.load_seconds},
        )

    # -- generation ------------------------------------------------------------------
    def render_chat(self, messages: list[ChatMessage],
                    config: GenerationConfig | None = None) -> str:
        """The exact prompt text the chat template makes of ``messages`` and ``config``."""
        return self._render(self._ensure_loaded(), messages, config or GenerationConfig())

    def _render(self, loaded: _Loaded, messages: list[ChatMessage],
                config: GenerationConfig) -> str:
        dicts, variables = template_inputs(messages, config, loaded.traits, self.source.name)
        if not loaded.template:
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in dicts]
            return "\n".join([*lines, "Assistant:"])
        return render_chat_template(loaded.template, dicts, **loaded.variables, **variables)

    def _stream_chat(
        self, messages: list[ChatMessage], config: GenerationConfig
    ) -> Iterator[Chunk]:
        was_loaded = self.is_loaded
        started = time.perf_counter()
        loaded = self._ensure_loaded()
        load_seconds = 0.0 if was_loaded else time.perf_counter() - started
        config = with_qwen3_sampling(config, loaded.header.architecture,
                                     loaded.traits.thinking_switch)
        prompt = self._render(loaded, messages, config)
        tokens = loaded.llama.tokenize(prompt.encode(), add_bos=False, special=True)
        return self._generate(loaded, tokens, prompt, config, load_seconds)

    def _stream_complete(self, prompt: str, config: GenerationConfig) -> Iterator[Chunk]:
        if config.tools:
            raise InvalidRequestError("tools need a conversation; use chat() instead of "
                                      "complete()")
        loaded = self._ensure_loaded()
        tokens = loaded.llama.tokenize(prompt.encode(), add_bos=True, special=False)
        return self._generate(loaded, tokens, prompt, config, 0.0)

    def _generate(self, loaded: _Loaded, tokens: list[int], prompt: str,
                  config: GenerationConfig, load_seconds: float) -> Iterator[Chunk]:
        window = loaded.llama.n_ctx()
        room = window - len(tokens)
        if room <= 0:
            raise InvalidRequestError(
                f"the prompt has {len(tokens)} tokens and fills the {window}-token context "
                f"window of {self.source.name}; shorten the prompt or the history")
        max_new = min(config.max_tokens or room, room)
        starts_thinking = opens_thinking(prompt)
        grammar = self._grammar(config)
        parser = ResponseParser(tool_names=config.tool_names,
                                parse_tool_calls=config.tools_active,
                                starts_in_thinking=starts_thinking,
                                forced_tool_call=bool(config.forced_tools))
        assembler = ChunkAssembler(config, parser, prompt_tokens=len(tokens), max_new=max_new,
                                   load_seconds=load_seconds)
        return self._token_stream(loaded, tokens, config, grammar, assembler, max_new)

    def _token_stream(self, loaded: _Loaded, tokens: list[int], config: GenerationConfig,
                      grammar: Any, assembler: ChunkAssembler, max_new: int
                      ) -> Iterator[Chunk]:
        import llama_cpp

        llama = loaded.llama
        vocab = llama._model.vocab
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self._run_lock:
            if config.seed is not None:
                llama.set_seed(config.seed)
            generated: list[int] = []
            for token in llama.generate(tokens, grammar=grammar, **_sampling(config)):
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    assembler.end_of_turn()
                    break
                piece = assembler.token(text.decode(llama.detokenize(
                    [token], prev_tokens=generated[-8:] or None)))
                generated.append(token)
                if piece is not None:
                    yield piece
                if assembler.stopped or len(generated) >= max_new:
                    break
            yield assembler.finish(text.decode(b"", final=True))

    def _grammar(self, config: GenerationConfig) -> Any:
        """A llama.cpp grammar for structured output or a forced tool call (cached)."""
        if config.response_format is not None:
            schema = config.response_format.schema or {"type": "object"}
            key, gbnf = f"json:{json.dumps(schema)}", lambda: _schema_gbnf(schema)
        elif config.tools_active and config.forced_tools:
            tools = config.forced_tools
            key = f"tools:{json.dumps([t.call_schema() for t in tools])}"
            gbnf = lambda: _tool_call_gbnf(tools)  # noqa: E731
        else:
            return None
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar

            self._grammars[key] = LlamaGrammar.from_string(gbnf(), verbose=False)
        return self._grammars[key]

    def _embed(self, texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        raise UnsupportedOperationError(
            f"{self.source.name} runs on llama.cpp for chat; embeddings with llama.cpp are not "
            "available yet; use model_type='huggingface' for the embedding model")


def _sampling(config: GenerationConfig) -> dict[str, Any]:
    """llama.cpp sampling arguments; temperature 0 (or None) decodes greedily.

    Unset values follow Ollama's defaults (top_k 40, top_p 0.95 here as in llama.cpp,
    min_p 0.05, repeat_penalty 1.1), since Ollama users run the same GGUFs this way.
    """
    greedy = config.temperature is None or config.greedy
    return {
        "temp": 0.0 if greedy else config.temperature,
        "top_k": config.top_k if config.top_k is not None else 40,
        "top_p": config.top_p if config.top_p is not None else 0.95,
        "min_p": config.min_p if config.min_p is not None else 0.05,
        # Ollama's default (llama.cpp counts the last 64 tokens): without it, greedy
        # decoding of small quantized models loops inside strings.
        "repeat_penalty": config.repetition_penalty or DEFAULT_REPEAT_PENALTY,
        "presence_penalty": config.presence_penalty or 0.0,
        "frequency_penalty": config.frequency_penalty or 0.0,
    }


def _schema_gbnf(schema: Any) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(json.dumps(bounded_for_generation(schema)))


def _tool_call_gbnf(tools: list[ToolSpec]) -> str:
    """One ``<tool_call>`` block whose JSON matches one of the tools' call schemas."""
    schemas = [t.call_schema() for t in tools]
    call = _schema_gbnf(schemas[0] if len(schemas) == 1 else {"anyOf": schemas})
    call = re.sub(r"^root ::=", "call ::=", call, flags=re.MULTILINE)
    return (f"root ::= {json.dumps(TOOL_CALL_OPEN + chr(10))} call "
            f"{json.dumps(chr(10) + TOOL_CALL_CLOSE)}\n{call}")


def _physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _gpu_layers(requested: int | None) -> int:
    if requested is not None:
        return requested
    import llama_cpp

    return -1 if llama_cpp.llama_supports_gpu_offload() else 0
