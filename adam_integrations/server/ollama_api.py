"""The Ollama REST API (``/api/*``) over this package's backends.

Requests are translated with ``wire.ollama`` (the same module the Ollama client backend
uses) and answered from the same streams every other entry point uses, through the
server's ``ModelService``. What clients rely on: NDJSON
streaming unless ``"stream": false``, integer-nanosecond durations, counts only on the
``done`` line, ``{"error": ...}`` with the right status before streaming and as the last
line after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import ollama
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adam_integrations.core import __version__
from adam_integrations.core.errors import InvalidRequestError, ModelNotFoundError
from adam_integrations.core.loaded import parse_keep_alive
from adam_integrations.core.stores.ollama_store import ModelLayers, ollama_store_roots
from adam_integrations.core.stores.weight_files import WeightsSummary
from adam_integrations.core.types import ChatMessage, ModelSource
from adam_integrations.served import KeepAlive, ServedModel
from adam_integrations.server.errors import redact_paths
from adam_integrations.server.names import ALIAS_PATTERN, check_alias
from adam_integrations.server.openapi import (
    EMBEDDER,
    MODEL,
    WHY,
    answer,
    json_content,
    nullable,
    operation,
    ref,
    request_body,
    streamed,
)
from adam_integrations.server.request_body import read_json
from adam_integrations.server.serving import (
    ModelService,
    RunningModel,
    StoredModel,
)
from adam_integrations.server.streams import ndjson
from adam_integrations.sharing.ollama_create import BlobUpload, create_model
from adam_integrations.tools import quantize_into_store
from adam_integrations.tools.quantize import NEEDS_IMATRIX, QUANTIZATIONS
from adam_integrations.wire import ollama as wire
from adam_integrations.wire import rerank as rerank_wire
from adam_integrations.wire.modelfile import render_modelfile

OLLAMA_VERSION = "0.12.0"  # the Ollama API level these routes follow, for clients that check


def routes(service: ModelService) -> list[Route]:
    api = OllamaApi(service)
    return [
        Route("/", api.root, methods=["GET", "HEAD"]),
        Route("/api/version", api.version, methods=["GET"]),
        Route("/api/tags", api.tags, methods=["GET"]),
        Route("/api/ps", api.ps, methods=["GET"]),
        Route("/api/show", api.show, methods=["POST"]),
        Route("/api/chat", api.chat, methods=["POST"]),
        Route("/api/generate", api.generate, methods=["POST"]),
        Route("/api/embed", api.embed, methods=["POST"]),
        Route("/api/embeddings", api.embeddings, methods=["POST"]),
        Route("/api/rerank", api.rerank, methods=["POST"]),
        Route("/api/pull", api.pull, methods=["POST"]),
        Route("/api/copy", api.copy, methods=["POST"]),
        Route("/api/create", api.create, methods=["POST"]),
        Route("/api/blobs/{digest}", api.blob, methods=["HEAD", "POST"]),
        Route("/api/delete", api.delete, methods=["DELETE"]),
    ]


def blob_path(digest: str) -> Path:
    """Where the store keeps the blob ``sha256:<hex>`` (or ``sha256-<hex>``); a digest of
    any other form is a 400 before anything is opened."""
    match = re.fullmatch(r"sha256[:-]([0-9a-f]{64})", digest)
    if match is None:
        raise InvalidRequestError(f"{digest[:80]!r} is not a digest; write it as "
                                  "sha256:<64 hex digits>", param="digest")
    return ollama_store_roots()[0] / "blobs" / f"sha256-{match.group(1)}"


@contextlib.contextmanager
def uploaded_adapter(files: Mapping[str, str]) -> Iterator[list[Path]]:
    """``/api/create``'s ``adapters`` (file names to uploaded blobs) as the adapter to
    read: one GGUF adapter blob as it is, or a PEFT adapter's files linked under their
    names in a temporary folder (removed after; the blobs stay)."""
    if not files:
        yield []
        return
    blobs = {str(name): blob_path(str(digest)) for name, digest in files.items()}
    for name, blob in blobs.items():
        if not blob.is_file():
            raise ModelNotFoundError(f"no blob {files[name]} for the adapter file {name}: "
                                     "upload it first with POST /api/blobs/<digest>",
                                     param="adapters")
    ggufs = [blob for name, blob in blobs.items() if name.lower().endswith(".gguf")]
    peft = {"adapter_config.json", "adapter_model.safetensors"}
    if len(ggufs) == 1 and len(blobs) == 1:
        yield ggufs
        return
    if set(blobs) != peft:
        raise InvalidRequestError(
            "adapters must be one GGUF adapter ({\"adapter.gguf\": \"sha256:<hex>\"}) or a "
            "PEFT adapter's adapter_config.json and adapter_model.safetensors",
            param="adapters")
    with tempfile.TemporaryDirectory(prefix="adam-adapter-") as folder:
        for name, blob in blobs.items():
            os.symlink(blob, Path(folder) / name)
        yield [Path(folder)]


def _active_adapters(served: ServedModel) -> list[str]:
    """The file names of the LoRA adapters the served name answers with."""
    loaded = list(getattr(served.backend, "adapters", ()))
    chosen = range(len(loaded)) if served.lora is None else [i for i, _ in served.lora]
    return [loaded[index].path.name for index in chosen if index < len(loaded)]


def keep_alive_of(body: Mapping[str, Any], served: ServedModel) -> KeepAlive:
    """The request's ``keep_alive`` in seconds (the served model's default, Ollama's 5
    minutes, when absent)."""
    value = body.get("keep_alive")
    return served.keep_alive if value is None else parse_keep_alive(value)


class OllamaApi:
    """The route handlers; errors raised here become ``{"error"}`` bodies (``app.py``)."""

    def __init__(self, service: ModelService) -> None:
        self.service = service

    async def root(self, request: Request) -> Response:
        return Response("Ollama is running", media_type="text/plain")

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": OLLAMA_VERSION, "adam_integrations": __version__})

    async def tags(self, request: Request) -> Response:
        return JSONResponse({"models": [_tag_entry(m) for m in await self.service.stored()]})

    async def ps(self, request: Request) -> Response:
        return JSONResponse({"models": [_ps_entry(m) for m in await self.service.running()]})

    async def show(self, request: Request) -> Response:
        show = wire.ShowRequest.parse(await read_json(request))
        served = await self.service.get(show.model)
        await self.service.load(served)  # a broken file: its 422 here
        info = await asyncio.to_thread(served.backend.info)
        template = await asyncio.to_thread(served.backend.chat_template)
        family = info.family or "unknown"
        model_info: dict[str, Any] = {"general.architecture": family}
        if info.parameter_count:
            model_info["general.parameter_count"] = info.parameter_count
        if info.context_window:
            model_info[f"{family}.context_length"] = info.context_window
        if info.embedding_dimension:
            model_info[f"{family}.embedding_length"] = info.embedding_dimension
        control = await asyncio.to_thread(served.backend.thinking_control)
        if control:  # how think (true/false or "low"/"medium"/"high") reaches the model
            model_info["adam.thinking_control"] = control
        adapters = _active_adapters(served)
        if adapters:  # what it was made of: the base's weights and these LoRA adapters
            model_info["adam.base"] = served.source.name
            model_info["adam.adapters"] = adapters
        capabilities = [c for c in info.capabilities if c in
                        ("completion", "tools", "thinking", "embedding", "vision", "insert")]
        layers = served.layers
        parameters = {**layers.parameters}
        return JSONResponse({
            "license": layers.license or "",
            # FROM the name the model was asked by (a Modelfile made from it creates the same
            # model here): no answer says where the server keeps its files
            "modelfile": f"# adam-integrations: {redact_paths(served.explanation)}\n"
            + render_modelfile(served.name, system=layers.system,
                template=layers.chat_template or layers.template, parameters=parameters,
                messages=layers.messages, license=layers.license),
            "parameters": "\n".join(f"{key} {value}" for key, values in parameters.items()
                                    for value in (values if isinstance(values, list)
                                                  else [values])),
            "template": layers.template or template or "",
            **({"system": layers.system} if layers.system else {}),
            "details": wire.model_details(served.source.is_gguf, info.family,
                                          info.parameter_count,
                                          info.quantization or info.dtype),
            "model_info": model_info, "capabilities": capabilities,
            "modified_at": wire.now_rfc3339(),
        })

    async def chat(self, request: Request) -> Response:
        body = await read_json(request)
        chat = wire.ChatRequest.parse(body)
        config = chat.to_config()
        served = await self.service.get(body.get("model"))
        keep_alive = keep_alive_of(body, served)
        if not body.get("messages"):  # load or unload only, as Ollama does
            return await self._load_or_unload(body, served, keep_alive, chat=True)
        answer = await self.service.chat(served, chat.chat_messages(), config, keep_alive)
        name = body["model"]  # echoed unchanged, as Ollama does
        return await _answer(body, (wire.chat_line(name, c, answer.load_seconds)
                                    async for c in answer.chunks), wire.merged_chat)

    async def generate(self, request: Request) -> Response:
        body = await read_json(request)
        config = wire.GenerateRequest.parse(body).to_config()
        served = await self.service.get(body.get("model"))
        keep_alive = keep_alive_of(body, served)
        prompt = body.get("prompt")
        if not prompt:
            return await self._load_or_unload(body, served, keep_alive, chat=False)
        suffix = body.get("suffix") or None
        if body.get("raw") or suffix is not None:  # a suffix: the model's own FIM tokens
            answer = await self.service.complete(served, prompt, config, keep_alive, suffix)
        else:
            messages = [ChatMessage("user", prompt)]
            if body.get("system"):
                messages.insert(0, ChatMessage("system", body["system"]))
            answer = await self.service.chat(served, messages, config, keep_alive)
        name = body["model"]  # echoed unchanged, as Ollama does
        return await _answer(body, (wire.generate_line(name, c, answer.load_seconds)
                                    async for c in answer.chunks), wire.merged_generate)

    async def embed(self, request: Request) -> Response:
        body = await read_json(request)
        texts = wire.EmbedRequest.parse(body).texts()
        served = await self.service.get(body.get("model"), embedding=True)
        load_seconds = await self.service.load(served)
        started = asyncio.get_running_loop().time()
        vectors = await self.service.embed(served, texts, keep_alive_of(body, served),
                                           dimensions=body.get("dimensions"))
        total = asyncio.get_running_loop().time() - started + load_seconds
        count = await self.service.token_count(served, texts)
        return JSONResponse({"model": body["model"], "embeddings": vectors,
                             "total_duration": wire.nanoseconds(total),
                             "load_duration": wire.nanoseconds(load_seconds),
                             "prompt_eval_count": count})

    async def embeddings(self, request: Request) -> Response:
        body = await read_json(request)
        wire.EmbeddingsRequest.parse(body)
        served = await self.service.get(body.get("model"), embedding=True)
        prompt = body.get("prompt") or ""
        if not prompt:
            return JSONResponse({"embedding": []})
        vectors = await self.service.embed(served, [prompt], keep_alive_of(body, served))
        return JSONResponse({"embedding": vectors[0]})

    async def rerank(self, request: Request) -> Response:
        """Reranking for Ollama clients (Ollama has none): ``/v1/rerank``'s fields and
        answer (``wire.rerank``), Ollama's errors and ``keep_alive``."""
        body = await read_json(request)
        asked = rerank_wire.RerankRequest.parse(body)
        served = await self.service.get(asked.model)
        reranking = await self.service.rerank(
            served, asked.query, asked.texts(), top_n=asked.top_n,
            instruction=asked.instruction, keep_alive=keep_alive_of(body, served))
        return JSONResponse(rerank_wire.rerank_answer(reranking, asked.model, asked))

    async def pull(self, request: Request) -> Response:
        body = await read_json(request)
        wire.PullRequest.parse(body)
        name = body.get("model") or body.get("name")
        served = await self.service.get(name)

        async def lines() -> AsyncIterator[dict[str, Any]]:
            # Downloads what is missing (hub models, when online); offline or unknown,
            # the error comes with its status before anything is streamed.
            await self.service.load(served)
            yield {"status": f"{name} is on disk and loaded"}
            yield {"status": "success"}

        if body.get("stream", True) is not False:
            return await ndjson(lines())
        return JSONResponse([line async for line in lines()][-1])

    async def create(self, request: Request) -> Response:
        """``ollama create``: a model in Ollama's store from an existing model or an
        uploaded GGUF, with system, template, parameters, messages and license
        (``sharing.ollama_create``); status lines as Ollama sends them."""
        body = await read_json(request)
        wire.CreateRequest.parse(body)
        name = check_alias(body.get("model"))
        gguf, inherited = await self._create_base(body)
        statuses: list[str] = []
        if body.get("quantize"):  # llama.cpp's quantizer, into the store
            gguf = await asyncio.to_thread(
                quantize_into_store, gguf, str(body["quantize"]), report=statuses.append)
        with uploaded_adapter(body.get("adapters") or {}) as adapters:
            await asyncio.to_thread(lambda: create_model(
                name, gguf, inherited=inherited, system=body.get("system"),
                template=body.get("template"), parameters=body.get("parameters"),
                messages=body.get("messages"), license=body.get("license"),
                adapters=adapters, overwrite=body.get("overwrite") is True,
                report=statuses.append))
        self.service.models.forget(name)
        lines = [{"status": status} for status in [*statuses, "success"]]

        async def streamed() -> AsyncIterator[dict[str, Any]]:
            for line in lines:
                yield line

        if body.get("stream", True) is not False:
            return await ndjson(streamed())
        return JSONResponse(lines[-1])

    async def _create_base(self, body: Mapping[str, Any]) -> tuple[Path, ModelLayers | None]:
        """The GGUF a created model is made of, and the layers it inherits."""
        files = body.get("files") or {}
        ggufs = {k: v for k, v in files.items() if str(k).lower().endswith(".gguf")}
        if files and (len(ggufs) != 1 or len(files) != 1):
            raise InvalidRequestError(
                "files must name one GGUF file, {\"model.gguf\": \"sha256:<hex>\"}; "
                "safetensors folders cannot be created from here", param="files")
        if ggufs:
            [digest] = ggufs.values()
            blob = blob_path(str(digest))
            if not blob.is_file():
                raise ModelNotFoundError(
                    f"no blob {digest}: upload the file first with POST /api/blobs/{digest} "
                    "(the ollama client's create does)", param="files")
            return blob, None
        if not body.get("from"):
            raise InvalidRequestError("from or files is required: the model to start from, "
                                      "or an uploaded GGUF", param="from")
        served = await self.service.get(body["from"])
        if not Path(served.source.location).exists():
            raise ModelNotFoundError(f'model "{body["from"]}" not found, try pulling it '
                                     "first", param="from")
        if served.source.kind != "gguf":
            raise InvalidRequestError(
                f"{body['from']!r} is not a GGUF (its weights are safetensors); a model in "
                "Ollama's store is a GGUF: create from a GGUF model", param="from")
        return Path(served.source.location), served.layers

    async def blob(self, request: Request) -> Response:
        """``HEAD``: 200 when the store has the blob, else 404; ``POST``: the body
        stored as that blob (201), once its sha256 is checked (a mismatch is a 400 and
        nothing is kept); 200 when it is already there. An upload counts as work (a
        shutdown answers it 503 and waits for that), is held to the upload limit (413)
        and the free-space reserve (507), and nothing of one that fails is left."""
        path = blob_path(request.path_params["digest"])
        if request.method == "HEAD":
            return Response(status_code=200 if path.is_file() else 404)
        if path.is_file():
            return Response(status_code=200)
        settings = self.service.settings
        declared = request.headers.get("content-length", "")
        upload = await asyncio.to_thread(
            BlobUpload, path.name.removeprefix("sha256-"), path.parent.parent,
            max_bytes=settings.max_upload_bytes, min_free=settings.min_free_bytes,
            declared=int(declared) if declared.isdigit() else None)
        try:
            async for piece in self.service.upload_pieces(request):
                await asyncio.to_thread(upload.write, piece)
            await asyncio.to_thread(upload.finish)
        except BaseException:
            upload.abandon()  # at once, on the loop: a cancelled task may not await
            raise
        return Response(status_code=201)

    async def copy(self, request: Request) -> Response:
        copy = wire.CopyRequest.parse(await read_json(request))
        await asyncio.to_thread(self.service.models.copy, copy.source, copy.destination)
        return Response(status_code=200)

    async def delete(self, request: Request) -> Response:
        delete = wire.DeleteRequest.parse(await read_json(request))
        await asyncio.to_thread(self.service.models.delete, delete.model)
        return Response(status_code=200)

    async def _load_or_unload(self, body: Mapping[str, Any], served: ServedModel,
                              keep_alive: KeepAlive, *, chat: bool) -> Response:
        if keep_alive == 0:
            await self.service.unload(served)
            reason = "unload"
        else:
            await self.service.keep_loaded(served, keep_alive)
            reason = "load"
        line: dict[str, Any] = {"model": body["model"], "created_at": wire.now_rfc3339(),
                                "done": True, "done_reason": reason}
        if chat:
            line["message"] = {"role": "assistant", "content": ""}
        else:
            line["response"] = ""
        return JSONResponse(line)


async def _answer(body: Mapping[str, Any], lines: AsyncIterator[dict[str, Any]],
                  merge: Any) -> Response:
    """NDJSON unless the request says ``"stream": false``; then the lines merged."""
    if body.get("stream", True) is not False:
        return await ndjson(lines)
    return JSONResponse(merge([line async for line in lines]))


def _tag_entry(model: StoredModel) -> dict[str, Any]:
    return {"name": model.name, "model": model.name, "size": model.size,
            "digest": model.digest, "modified_at": wire.rfc3339(model.modified_at),
            "details": _details(model.weights, model.source)}


def _details(weights: WeightsSummary | None, source: ModelSource) -> dict[str, Any]:
    if weights is None:
        return wire.model_details(source.is_gguf, None, None, source.quantization)
    return wire.model_details(weights.format == "gguf", weights.architecture,
                              weights.parameters, weights.quantization)


def _ps_entry(model: RunningModel) -> dict[str, Any]:
    entry = _tag_entry(model.stored)
    entry.update({"expires_at": wire.rfc3339(model.expires_at),
                  "size_vram": entry["size"] if model.on_gpu else 0,
                  "context_length": model.context_length})
    return entry


# -- this dialect's part of /openapi.json (server.openapi) ------------------------
_ALWAYS = ("model", "created_at", "done")
"""The fields every /api/chat and /api/generate line has (the ollama SDK's types make
them optional)."""


def _made_from(body: dict[str, Any]) -> dict[str, Any]:
    """``/api/create``'s body: ``from`` or ``files`` is given (not null), and ``quantize``
    names a type the quantizer writes without an importance matrix (any case)."""
    schema = body["content"]["application/json"]["schema"]
    schema["properties"]["from"] = nullable(MODEL)
    types = [kind for kind in QUANTIZATIONS if kind not in NEEDS_IMATRIX]
    any_case = "|".join("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c
                                for c in kind) for kind in types)
    schema["properties"]["quantize"] = nullable({
        "type": "string", "pattern": f"^\\s*({any_case})\\s*$",
        "description": f"a quantization this can write without an importance matrix: "
                       f"{', '.join(types)} (llama.cpp's quantizer, from an F16, BF16 or "
                       "F32 GGUF)"})
    schema["anyOf"] = [{"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                       for name in ("from", "files")]
    return body


def _blob_operation(summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    described = operation("/api/blobs/{digest}", summary, {"content": {}}, body)
    described["responses"]["201"] = {"description": "the blob was stored"}
    described["responses"]["400"] = {"description": WHY["400"] + "; the digest or the "
                                     "body's sha256", "content": json_content(ref("OllamaError"))}
    if body is None:
        described["responses"]["404"] = {"description": "no such blob"}
    described["parameters"] = [{"name": "digest", "in": "path", "required": True,
                                "schema": {"type": "string",
                                           "pattern": "^sha256[:-][0-9a-f]{64}$"}}]
    return described


_EMPTY = {"content": {}}
_ALIAS = {**MODEL, "pattern": ALIAS_PATTERN, "examples": ["my-model:latest"]}


_CHAT = request_body(wire.ChatRequest)


_GENERATE = request_body(wire.GenerateRequest)


OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "/": {"get": operation("/", "liveness: 'Ollama is running'",
                            {"content": {"text/plain": {"schema": {"type": "string"}}}})},
    "/api/version": {"get": operation("/api/version", "the Ollama API version", {
        "content": json_content({"type": "object", "required": ["version"],
                          "properties": {"version": {"type": "string"}}})})},
    "/api/tags": {"get": operation("/api/tags", "the models on disk", {"content": json_content(
        answer(ollama.ListResponse))})},
    "/api/ps": {"get": operation("/api/ps", "the models in memory", {"content": json_content(
        answer(ollama.ProcessResponse))})},
    "/api/show": {"post": operation("/api/show", "a model's details, template and "
                                     "capabilities", {"content": json_content(answer(
                                         ollama.ShowResponse, "details", "capabilities"))},
                                     request_body(wire.ShowRequest))},
    "/api/chat": {"post": operation("/api/chat", "a chat answer (NDJSON lines unless "
                                     "stream=false)", streamed(answer(
                                         ollama.ChatResponse, *_ALWAYS),
                                         "application/x-ndjson"), _CHAT)},
    "/api/generate": {"post": operation("/api/generate", "a completion (NDJSON lines "
                                         "unless stream=false)", streamed(answer(
                                             ollama.GenerateResponse, *_ALWAYS, "response"),
                                             "application/x-ndjson"), _GENERATE)},
    "/api/embed": {"post": operation("/api/embed", "embeddings, L2-normalised", {
        "content": json_content(answer(ollama.EmbedResponse, "model"))},
        request_body(wire.EmbedRequest, EMBEDDER))},
    "/api/embeddings": {"post": operation("/api/embeddings", "one embedding (the older "
                                           "route)", {"content": json_content(answer(
                                               ollama.EmbeddingsResponse))},
                                           request_body(wire.EmbeddingsRequest,
                                                        EMBEDDER))},
    "/api/rerank": {"post": operation(
        "/api/rerank", "documents ranked for a query (/v1/rerank's fields and answer; "
        "Ollama has no reranking of its own), on any chat model",
        {"content": json_content(rerank_wire.RERANK_ANSWER)},
        request_body(rerank_wire.RerankRequest))},
    "/api/pull": {"post": operation("/api/pull", "make a model ready (download what is "
                                     "missing)", streamed(answer(
                                         ollama.ProgressResponse, "status"),
                                         "application/x-ndjson"),
                                     request_body(wire.PullRequest))},
    "/api/copy": {"post": operation("/api/copy", "another name for a model", _EMPTY,
                                     request_body(wire.CopyRequest, source=MODEL,
                                                  destination=_ALIAS))},
    "/api/create": {"post": operation("/api/create", "create a model in Ollama's store "
                                       "(from a model, or an uploaded GGUF)", streamed(
                                           answer(ollama.ProgressResponse, "status"),
                                           "application/x-ndjson"),
                                       _made_from(request_body(wire.CreateRequest, {
                                           **_ALIAS, "examples": ["my-assistant:latest"]})))},
    "/api/blobs/{digest}": {
        "head": _blob_operation("whether the store has this blob (200, else 404)", None),
        "post": _blob_operation("upload a blob (the body), checked against its digest: "
                                "201 created, 200 already there", {
                                    "required": True, "content": {"application/octet-stream": {
                                        "schema": {"type": "string", "format": "binary"}}}}),
    },
    "/api/delete": {"delete": operation("/api/delete", "remove a name made with "
                                         "/api/copy or a model made with /api/create",
                                         _EMPTY, request_body(wire.DeleteRequest,
                                                              _ALIAS))},
}
"""This dialect's routes as ``/openapi.json`` describes them (``server.openapi``)."""
