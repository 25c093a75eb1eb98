"""Deployment plans: how to serve each Qwen3 model on a cluster with vLLM, SGLang or
llama.cpp's ``llama-server``, when no single GPU holds it or many users share it.

    plan_deployment("vllm", "8x80GB", nodes=2, context=32768, concurrency=64)
    adam recommend --engine vllm --gpus 8x80GB --nodes 2 --context 32768 --concurrency 64

Per GPU, by the formula of ``core.memory`` (weights + KV cache + compute + reserve), with
the engine's own share of the memory (vLLM's ``--gpu-memory-utilization`` 0.9, SGLang's
``--mem-fraction-static`` 0.88, llama.cpp the 85% headroom the local pick uses):

    usable   = GPU memory x share            ("80GB" is read as 80 GiB)
    weights  = parameters x bytes per weight / (tensor parallel x pipeline parallel)
               (bf16, 2 bytes, on vLLM and SGLang; Q4_K_M, 4.9 bits, on llama-server)
    compute  = max(10% of the weights on the GPU, 0.5 GiB); reserve = the CUDA runtime's
    KV/token = 2 x KV layers / pipeline x ceil(kv_heads / tensor) x head_dim x 2 bytes
               (KV layers: all of them, or one in four for hybrid-attention models)
               (llama-server splits layers, not heads: 2 x layers / GPUs x kv_heads x ...)
    KV room  = usable - weights - compute - reserve
    sequences per replica = KV room / KV per token // context

Tensor parallelism is chosen first, within a node, as the smallest power of two that
divides the attention heads and leaves room for at least one sequence of the context
asked for; only when a node's GPUs cannot hold the model are nodes chained by pipeline
parallelism (the fewest that do). Every other GPU becomes a data-parallel replica, and
the plan says whether the replicas together hold the concurrency asked for.
llama-server runs on one node: a model spread over that node's GPUs by layers
(``--split-mode layer``), one server per replica, ``-np`` slots each.

Example:
    >>> plan = plan_deployment("vllm", "1x80GB", context=32768, models=["qwen3_xl"])[0]
    >>> plan.tensor_parallel, plan.fits
    (1, True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from adam_integrations.catalog.qwen3 import (
    BITS_PER_WEIGHT,
    LATER_CHAT_MODELS,
    QWEN3_MODELS,
    Qwen3Model,
)
from adam_integrations.core.errors import InvalidRequestError
from adam_integrations.core.memory import DEVICE_RESERVE, GIB, MIN_COMPUTE

ENGINE_SHARE = {"vllm": 0.90, "sglang": 0.88, "llama-server": 0.85}
WEIGHT_BITS = {"vllm": BITS_PER_WEIGHT["BF16"], "sglang": BITS_PER_WEIGHT["BF16"],
               "llama-server": BITS_PER_WEIGHT["Q4_K_M"]}
KV_BYTES = 2  # f16/bf16 KV cache, every engine's default
ENGINES = tuple(ENGINE_SHARE)


@dataclass(frozen=True)
class Cluster:
    """``nodes`` nodes of ``gpus`` GPUs with ``gpu_gib`` GiB each."""

    gpus: int
    gpu_gib: float
    nodes: int = 1

    @classmethod
    def parse(cls, text: str, nodes: int = 1) -> Cluster:
        """``"8x80GB"`` (also ``8x80``, ``8x80GiB``): GPUs per node x memory each.

        Example:
            >>> Cluster.parse("2x24GB")
            Cluster(gpus=2, gpu_gib=24.0, nodes=1)
        """
        match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+(?:\.\d+)?)\s*(?:G|GB|GiB)?\s*", text)
        if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0 or nodes < 1:
            raise InvalidRequestError(f"--gpus {text!r}: write GPUs per node x memory each, "
                                      "e.g. 8x80GB (and --nodes 2 for two such nodes)")
        return cls(int(match.group(1)), float(match.group(2)), nodes)

    @property
    def total_gpus(self) -> int:
        return self.gpus * self.nodes


@dataclass(frozen=True)
class DeploymentPlan:
    """How one model is served on a cluster (memory per GPU in bytes)."""

    model: Qwen3Model
    engine: str
    fits: bool
    tensor_parallel: int = 0
    pipeline_parallel: int = 0
    data_parallel: int = 0
    weights_per_gpu: float = 0.0
    kv_room_per_gpu: float = 0.0
    sequences_per_replica: int = 0
    concurrency_wanted: int = 1
    command: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def concurrent_sequences(self) -> int:
        return self.sequences_per_replica * self.data_parallel

    @property
    def meets_concurrency(self) -> bool:
        return self.concurrent_sequences >= self.concurrency_wanted

    def describe(self) -> str:
        if not self.fits:
            return f"{self.model.hf_id}: does not fit. " + " ".join(self.notes)
        layout = (f"split over {self.tensor_parallel} GPU(s) by layers"
                  if self.engine == "llama-server" else f"tensor-parallel {self.tensor_parallel}")
        if self.pipeline_parallel > 1:
            layout += f" x pipeline-parallel {self.pipeline_parallel} (nodes)"
        layout += f", {self.data_parallel} replica(s)"
        load = ("enough" if self.meets_concurrency else "NOT enough") + \
            f" for {self.concurrency_wanted} at once"
        return (f"{self.model.hf_id}: {layout}; {self.weights_per_gpu / GIB:.1f} GiB of "
                f"weights and {self.kv_room_per_gpu / GIB:.1f} GiB of KV cache per GPU: "
                f"{self.sequences_per_replica} sequence(s) per replica, "
                f"{self.concurrent_sequences} in all ({load})")


def plan_deployment(engine: str, gpus: str | Cluster, *, nodes: int = 1, context: int = 32768,
                    concurrency: int = 1, models: Sequence[str] | None = None
                    ) -> list[DeploymentPlan]:
    """A plan for each Qwen3 chat model of every generation whose shape is known (or the
    aliases in ``models``) on ``gpus``."""
    engine = "llama-server" if engine in ("llamacpp-server", "llama.cpp") else engine
    if engine not in ENGINE_SHARE:
        raise InvalidRequestError(f"unknown engine {engine!r}; plans are made for "
                                  f"{', '.join(ENGINES)}")
    cluster = gpus if isinstance(gpus, Cluster) else Cluster.parse(gpus, nodes)
    if context < 1 or concurrency < 1:
        raise InvalidRequestError("--context and --concurrency must be at least 1")
    chosen = [m for m in QWEN3_MODELS + LATER_CHAT_MODELS if m.shape_known and (
        models is None or m.alias in models or m.hf_id in models)]
    return [_plan(m, engine, cluster, context, concurrency) for m in chosen]


def per_gpu(model: Qwen3Model, engine: str, gpu_gib: float, tensor: int, pipeline: int
            ) -> tuple[float, float, float]:
    """Weights, KV room (bytes) and KV bytes per token on each GPU of one replica."""
    weights = model.parameters * WEIGHT_BITS[engine] / 8 / (tensor * pipeline)
    compute = max(0.1 * weights, MIN_COMPUTE)
    room = gpu_gib * GIB * ENGINE_SHARE[engine] - weights - compute - DEVICE_RESERVE["cuda"]
    if engine == "llama-server":  # split by layers: each GPU keeps all KV heads
        layers, kv_heads = math.ceil(model.kv_layers / (tensor * pipeline)), model.kv_heads
    else:
        layers, kv_heads = (math.ceil(model.kv_layers / pipeline),
                            math.ceil(model.kv_heads / tensor))
    kv_per_token = 2 * layers * kv_heads * model.head_dim * KV_BYTES
    return weights, room, kv_per_token


def _sequences(model: Qwen3Model, engine: str, gpu_gib: float, tensor: int, pipeline: int,
               context: int) -> tuple[float, float, int]:
    weights, room, kv_per_token = per_gpu(model, engine, gpu_gib, tensor, pipeline)
    return weights, room, max(0, int(room // (kv_per_token * context))) if room > 0 else 0


def _plan(model: Qwen3Model, engine: str, cluster: Cluster, context: int,
          concurrency: int) -> DeploymentPlan:
    if context > model.max_context:
        return DeploymentPlan(model, engine, False, concurrency_wanted=concurrency, notes=[
            f"its longest context is {model.max_context:,} tokens, less than {context:,}"])
    if engine == "llama-server" and "Q4_K_M" not in model.quants:
        return DeploymentPlan(model, engine, False, concurrency_wanted=concurrency, notes=[
            f"no Q4_K_M GGUF of {model.hf_id} is known; serve it with vLLM or SGLang"])
    tensors = [t for t in (1, 2, 4, 8, 16) if t <= cluster.gpus and model.q_heads % t == 0]
    pipelines = range(1, (cluster.nodes if engine != "llama-server" else 1) + 1)
    for pipeline in pipelines:
        for tensor in (tensors if pipeline == 1 else tensors[-1:]):
            weights, room, sequences = _sequences(model, engine, cluster.gpu_gib, tensor,
                                                  pipeline, context)
            if sequences >= 1:
                replicas = cluster.total_gpus // (tensor * pipeline)
                plan = DeploymentPlan(model, engine, True, tensor, pipeline, replicas, weights,
                                      room, sequences, concurrency)
                return _with_command(plan, context, cluster)
    needed = _gpus_needed(model, engine, cluster.gpu_gib, context)
    where = f"{needed} GPUs of {cluster.gpu_gib:g} GiB" if needed else "more memory per GPU"
    return DeploymentPlan(model, engine, False, concurrency_wanted=concurrency, notes=[
        f"one sequence of {context:,} tokens needs {where}; this cluster has "
        f"{cluster.total_gpus} ({cluster.nodes} node(s) of {cluster.gpus})"
        + (" and llama-server runs on one node" if engine == "llama-server" else "")])


def _gpus_needed(model: Qwen3Model, engine: str, gpu_gib: float, context: int) -> int | None:
    for gpus in (1, 2, 4, 8, 16, 32, 64):
        tensor = min(gpus, 8)
        if model.q_heads % tensor:
            continue
        if _sequences(model, engine, gpu_gib, tensor, gpus // tensor, context)[2] >= 1:
            return gpus
    return None


def _with_command(plan: DeploymentPlan, context: int, cluster: Cluster) -> DeploymentPlan:
    model, notes = plan.model, plan.notes
    yarn = context > model.native_context
    factor = math.ceil(context / model.native_context * 10) / 10
    if plan.engine == "vllm":
        parts = [f"vllm serve {model.hf_id}", f"--tensor-parallel-size {plan.tensor_parallel}"]
        if plan.pipeline_parallel > 1:
            parts.append(f"--pipeline-parallel-size {plan.pipeline_parallel}")
            notes.append(f"pipeline parallelism spans {plan.pipeline_parallel} nodes: start a "
                         "Ray cluster first (ray start --head on one node, ray start "
                         "--address=<head>:6379 on the others) and run the command on the head")
        if plan.data_parallel > 1:
            parts.append(f"--data-parallel-size {plan.data_parallel}")
            _replicas_across_nodes(plan, cluster, notes, "--data-parallel-size-local")
        parts += [f"--max-model-len {context}", "--gpu-memory-utilization 0.9",
                  "--reasoning-parser qwen3", "--enable-auto-tool-choice",
                  f"--tool-call-parser {_tool_parser(model, 'hermes')}"]
        if yarn:
            parts.append("--rope-scaling '{\"rope_type\":\"yarn\",\"factor\":" f"{factor},"
                         f"\"original_max_position_embeddings\":{model.native_context}}}'")
    elif plan.engine == "sglang":
        parts = ["python -m sglang.launch_server", f"--model-path {model.hf_id}",
                 f"--tp {plan.tensor_parallel}"]
        if plan.pipeline_parallel > 1:
            parts += [f"--pp-size {plan.pipeline_parallel}",
                      f"--nnodes {plan.pipeline_parallel}", "--node-rank <0..n-1>",
                      "--dist-init-addr <head>:5000"]
            notes.append("run the command on every node, each with its own --node-rank")
        if plan.data_parallel > 1:
            parts.append(f"--dp {plan.data_parallel}")
            _replicas_across_nodes(plan, cluster, notes, "--nnodes/--node-rank")
        parts += [f"--context-length {context}", "--mem-fraction-static 0.88",
                  "--reasoning-parser qwen3",
                  f"--tool-call-parser {_tool_parser(model, 'qwen25')}"]
        if yarn:
            parts.append("--json-model-override-args '{\"rope_scaling\":{\"rope_type\":"
                         f"\"yarn\",\"factor\":{factor},\"original_max_position_embeddings\":"
                         f"{model.native_context}}}}}'")
    else:
        slots = max(1, min(plan.sequences_per_replica,
                           math.ceil(plan.concurrency_wanted / plan.data_parallel)))
        parts = [f"llama-server -hf {model.gguf_repo}:Q4_K_M", f"-c {context * slots}",
                 f"-np {slots}", "-ngl 99", "--jinja", "--reasoning-format deepseek"]
        if plan.tensor_parallel > 1:
            parts.append("--split-mode layer")
        if yarn:
            parts += ["--rope-scaling yarn", f"--rope-scale {factor:g}",
                      f"--yarn-orig-ctx {model.native_context}"]
        if plan.data_parallel > 1:
            notes.append(f"run {plan.data_parallel} servers, each on its own "
                         f"{plan.tensor_parallel} GPU(s) (CUDA_VISIBLE_DEVICES) and port, "
                         "behind a load balancer")
    if not plan.meets_concurrency:
        notes.append(f"{plan.concurrent_sequences} sequences of {context:,} tokens fit at "
                     f"once, fewer than the {plan.concurrency_wanted} wanted: add GPUs, or "
                     "shorten the context")
    return replace(plan, command=" ".join(parts), notes=notes)


def _replicas_across_nodes(plan: DeploymentPlan, cluster: Cluster, notes: list[str],
                           flags: str) -> None:
    if plan.pipeline_parallel == 1 and cluster.nodes > 1:
        notes.append(f"the {plan.data_parallel} replicas span {cluster.nodes} nodes: start "
                     f"the engine on each node ({flags}, see its data-parallel docs), or run "
                     "one server per node behind a load balancer")


def _tool_parser(model: Qwen3Model, json_parser: str) -> str:
    """The engine's parser for the model's tool calls: Qwen3.5, 3.6 and 3.8 (and
    Qwen3-Coder-Next) write them in Qwen3-Coder's XML form (their chat templates; SGLang's
    Qwen3.5 recipes use ``qwen3_coder``), the others as Hermes-style JSON."""
    xml = model.generation in ("3.5", "3.6", "3.8") or model.alias == "qwen3_coder_next"
    return "qwen3_coder" if xml else json_parser
