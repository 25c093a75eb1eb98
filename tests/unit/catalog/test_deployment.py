"""Deployment plans (catalog.deployment) against the formula worked out by hand."""

from __future__ import annotations

import math

import pytest

from adam_integrations.catalog.deployment import Cluster, plan_deployment
from adam_integrations.core.errors import InvalidRequestError

GIB = 1024**3
RESERVE = 457 * 1024**2


def by_hand(params, layers, kv_heads, gpu_gib, share, bits, tp, pp, context,
            split_heads=True):
    """Sequences per replica, written out: weights, 10% compute (at least 0.5 GiB), the
    CUDA reserve, and the KV cache per token on one GPU."""
    weights = params * bits / 8 / (tp * pp)
    room = gpu_gib * GIB * share - weights - max(0.1 * weights, 0.5 * GIB) - RESERVE
    heads = math.ceil(kv_heads / tp) if split_heads else kv_heads
    per_layer_split = pp if split_heads else tp * pp
    per_token = 2 * math.ceil(layers / per_layer_split) * heads * 128 * 2
    return int(room // (per_token * context))


def plan(engine, gpus, model, **options):
    [found] = plan_deployment(engine, gpus, models=[model], **options)
    return found


def test_one_24gb_gpu_holds_qwen3_8b_at_8k_but_not_at_32k():
    small = plan("vllm", "1x24GB", "qwen3_xl", context=8192)
    assert small.fits and (small.tensor_parallel, small.data_parallel) == (1, 1)
    assert small.sequences_per_replica == by_hand(8.2e9, 36, 8, 24, 0.9, 16, 1, 1, 8192) == 3
    large = plan("vllm", "1x24GB", "qwen3_xl", context=32768)
    assert not large.fits and "needs 2 GPUs of 24 GiB" in large.notes[0]


def test_qwen3_32b_needs_two_80gb_gpus_with_tensor_parallelism():
    assert not plan("vllm", "1x80GB", "qwen3_xxxl").fits
    two = plan("vllm", "2x80GB", "qwen3_xxxl", context=32768)
    assert (two.tensor_parallel, two.pipeline_parallel, two.data_parallel) == (2, 1, 1)
    assert two.sequences_per_replica == by_hand(32.8e9, 64, 8, 80, 0.9, 16, 2, 1, 32768) == 9
    assert two.command == (
        "vllm serve Qwen/Qwen3-32B --tensor-parallel-size 2 --max-model-len 32768 "
        "--gpu-memory-utilization 0.9 --reasoning-parser qwen3 --enable-auto-tool-choice "
        "--tool-call-parser hermes")


def test_the_other_gpus_become_replicas_for_the_concurrency_wanted():
    one_node = plan("vllm", "8x80GB", "qwen3_xxxl", context=32768, concurrency=64)
    assert (one_node.tensor_parallel, one_node.data_parallel) == (2, 4)
    assert one_node.concurrent_sequences == 36 and not one_node.meets_concurrency
    assert "fewer than the 64 wanted" in one_node.notes[-1]
    two_nodes = plan("vllm", "8x80GB", "qwen3_xxxl", nodes=2, context=32768, concurrency=64)
    assert (two_nodes.data_parallel, two_nodes.concurrent_sequences) == (8, 72)
    assert two_nodes.meets_concurrency and "--data-parallel-size 8" in two_nodes.command


def test_the_235b_moe_needs_eight_80gb_gpus_and_says_so():
    alone = plan("vllm", "1x80GB", "qwen3_moe_large", context=32768)
    assert not alone.fits and "needs 8 GPUs of 80 GiB" in alone.notes[0]
    node = plan("vllm", "8x80GB", "qwen3_moe_large", context=32768)
    assert (node.tensor_parallel, node.pipeline_parallel) == (8, 1)
    assert node.sequences_per_replica == by_hand(235e9, 94, 4, 80, 0.9, 16, 8, 1, 32768) == 7
    assert node.weights_per_gpu == pytest.approx(235e9 * 2 / 8)


def test_nodes_are_chained_by_pipeline_parallelism_when_one_node_is_too_small():
    chained = plan("sglang", "8x40GB", "qwen3_moe_large", nodes=2, context=32768)
    assert (chained.tensor_parallel, chained.pipeline_parallel, chained.data_parallel) == (
        8, 2, 1)
    assert chained.sequences_per_replica == by_hand(235e9, 94, 4, 40, 0.88, 16, 8, 2, 32768)
    assert "--tp 8 --pp-size 2 --nnodes 2" in chained.command
    assert not plan("sglang", "8x40GB", "qwen3_moe_large", context=32768).fits


def test_llama_server_splits_layers_over_a_nodes_gpus_with_slots():
    split = plan("llama-server", "2x24GB", "qwen3_xxxl", context=32768, concurrency=8)
    assert split.fits and split.tensor_parallel == 2
    assert split.sequences_per_replica == by_hand(32.8e9, 64, 8, 24, 0.85, 4.9, 2, 1, 32768,
                                                  split_heads=False) == 2
    assert split.command == ("llama-server -hf Qwen/Qwen3-32B-GGUF:Q4_K_M -c 65536 -np 2 "
                             "-ngl 99 --jinja --reasoning-format deepseek --split-mode layer")
    moe = plan("llama-server", "8x80GB", "qwen3_moe_large", nodes=2, context=32768)
    assert (moe.tensor_parallel, moe.pipeline_parallel, moe.data_parallel) == (4, 1, 4)
    assert "run 4 servers" in moe.notes[0]  # no pipeline over nodes: servers per node


def test_a_context_past_the_native_window_adds_yarn():
    long = plan("vllm", "8x80GB", "qwen3_xl", context=131072)
    assert '"factor":4.0' in long.command and "--max-model-len 131072" in long.command
    assert not plan("vllm", "8x80GB", "qwen3_small", context=131072).fits  # 32k at most


@pytest.mark.parametrize("bad", ["8", "x80GB", "0x80GB", "8x0GB", "eight"])
def test_a_bad_cluster_is_refused_with_the_form_to_use(bad):
    with pytest.raises(InvalidRequestError, match=r"e\.g\. 8x80GB"):
        Cluster.parse(bad)
    with pytest.raises(InvalidRequestError, match="plans are made for"):
        plan_deployment("tgi", "1x80GB")
