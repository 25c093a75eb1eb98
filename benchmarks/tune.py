"""Making a model yours, measured on the real SmolLM2-135M weights (the embedded Q4_1 GGUF,
dequantized to a transformers checkpoint as the tests do) and texts every machine with
the dependencies has: issue 41's goals.

    .venv/bin/python benchmarks/tune.py [--steps 60] [--only lora,agreement,prune,...]

- **lora**: ``adam tune`` on a domain text (the package descriptions of transformers,
  PEFT, TRL, datasets and accelerate: every other paragraph; the rest is held out), then
  the held-out domain perplexity and a general text's (CPython's LICENSE.txt) before and
  after (the adapter merged, which scores as the adapter does; ``tools.evaluate`` on
  transformers). Goal: domain -20% or better, general +5% at most.
- **agreement**: the adapter as a GGUF on llama.cpp (over the F16 GGUF of the same
  weights) against PEFT on transformers, and the merged checkpoint converted to F16:
  mean KL (nats) and top-1 agreement over the held-out text. Goal: KL <= 0.01, top-1 >= 97%.
- **serving**: llama.cpp decode tokens/s with the adapter against without (goal >= 0.9x),
  measured in turns; the same with the adapter's attention projections alone; the anchors
  (llama-cpp-python's ``lora_path``, ``llama-server --lora``, the same llama.cpp); a
  1B-shaped model with a rank-16 adapter (LoRA's cost per layer shrinks as layers widen);
  and the time a request takes after another adapter's against after its own (the switch).
- **prune**: 25% of the blocks dropped by importance (measured on the domain's training
  half) against at random, then the pruned model distilled from the original on that
  half: the domain's held-out perplexity of each, and the share of the perplexity the
  pruning lost that distillation recovered (goal >= half).
- **throughput**: ``tools.tune`` tokens/s against a plain TRL ``SFTTrainer`` of the same
  configuration on the same tokens (goal >= 0.95x).

Results are printed and written to ``benchmarks/results/tune-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from adam_integrations.backends.local.huggingface.gguf_conversion import converted_gguf
from adam_integrations.backends.local.llamacpp import LlamaCppModel
from adam_integrations.catalog.embedded import EMBEDDED_CHAT
from adam_integrations.core.hardware import usable_cores
from adam_integrations.core.stores.gguf_header import read_gguf_header
from adam_integrations.sharing.adapter_gguf import adapter_for_gguf
from adam_integrations.sharing.checkpoint_gguf import write_gguf
from adam_integrations.tools import distill, evaluate, merge, prune, quantize, tune

PACKAGES = ("transformers", "peft", "trl", "datasets", "accelerate")
LENGTH = 256
ROOT = Path(__file__).resolve().parent


def texts(work: Path) -> dict[str, Path]:
    """The domain's training and held-out halves, and the general text."""
    paragraphs = [p.strip() for name in PACKAGES
                  for p in (importlib.metadata.metadata(name).get_payload() or "").split("\n\n")
                  if len(p.strip()) > 80]
    license_text = Path(sys.base_prefix) / "lib" / \
        f"python{sys.version_info.major}.{sys.version_info.minor}" / "LICENSE.txt"
    files = {"train": "\n\n".join(paragraphs[0::2]), "held": "\n\n".join(paragraphs[1::2]),
             "general": license_text.read_text(encoding="utf-8")}
    paths = {}
    for name, text in files.items():
        paths[name] = work / f"{name}.txt"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def perplexity(model: str | Path, text: Path, chunks: int = 12) -> float:
    [result] = evaluate([str(model)], text.read_text(encoding="utf-8"), backend="huggingface",
                        context=LENGTH, chunks=chunks, decode_tokens=1, keep=False)
    return float(result.perplexity)


def run_lora(work: Path, paths: dict[str, Path], steps: int, results: dict) -> Path:
    started = time.perf_counter()
    done = tune("smollm2", paths["train"], output=work / "adapter", max_steps=steps,
                batch_size=4, max_length=LENGTH, learning_rate=4e-4, progress=True)
    merged = merge("smollm2", done.path, output=work / "merged", progress=False).path
    base = converted_gguf(EMBEDDED_CHAT.require_path())[0]
    figures = {"steps": done.steps, "tokens_per_second": done.tokens_per_second,
               "train_seconds": time.perf_counter() - started}
    for name in ("held", "general"):
        before, after = perplexity(base, paths[name]), perplexity(merged, paths[name])
        figures[name] = {"before": before, "after": after, "change": after / before - 1}
    results["lora"] = figures
    print(f"lora: domain {figures['held']['before']:.2f} -> {figures['held']['after']:.2f} "
          f"({figures['held']['change']:+.1%}), general {figures['general']['before']:.2f} "
          f"-> {figures['general']['after']:.2f} ({figures['general']['change']:+.1%})")
    return done.path


def _logits(gguf: Path, tokens: list[int], lora: Path | None = None):
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(gguf), lora_path=str(lora) if lora else None,
                          logits_all=True, n_ctx=len(tokens) + 8, verbose=False)
    try:
        llm.eval(tokens)
        return np.array(llm.scores[:len(tokens)])
    finally:
        llm.close()


def _compare(reference, other) -> tuple[float, float]:
    import torch

    p = torch.log_softmax(torch.tensor(reference), -1)
    q = torch.log_softmax(torch.tensor(other), -1)
    kl = float((p.exp() * (p - q)).sum(-1).mean())
    return kl, float((p.argmax(-1) == q.argmax(-1)).float().mean())


def run_agreement(work: Path, paths: dict[str, Path], adapter: Path, results: dict) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = converted_gguf(EMBEDDED_CHAT.require_path())[0]
    f16 = quantize(EMBEDDED_CHAT.require_path(), "F16", output=work / "base-f16.gguf",
                   allow_requantize=True, progress=False).path
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokens = tokenizer(paths["held"].read_text(encoding="utf-8"))["input_ids"][:LENGTH * 2]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    with torch.no_grad():
        peft = model(torch.tensor([tokens])).logits[0].numpy()
    gguf_adapter = adapter_for_gguf(adapter, read_gguf_header(f16), f16)
    merged_f16 = work / "merged-f16.gguf"
    write_gguf(work / "merged", merged_f16, "F16")
    figures = {}
    for name, logits in (("gguf adapter on F16", _logits(f16, tokens, gguf_adapter)),
                         ("gguf adapter on Q4_1", _logits(EMBEDDED_CHAT.require_path(),
                                                          tokens, gguf_adapter)),
                         ("merged, converted F16", _logits(merged_f16, tokens))):
        kl, top1 = _compare(peft, logits)
        figures[name] = {"kl": kl, "top1": top1}
        print(f"agreement with PEFT, {name}: KL {kl:.4f} nats, top-1 {top1:.1%}")
    results["agreement"] = figures


ASK = "Explain what a tokenizer does."
DECODE_TOKENS = 128


def _decode_speed(gguf: Path, adapters: list[Path], rounds: int) -> float:
    """Decode tokens/s on the llama.cpp backend (one slot), the median of ``rounds``."""
    model = LlamaCppModel(str(gguf), adapters=adapters, parallel=1)
    try:
        model.complete(ASK, max_tokens=8, temperature=0.0)  # loaded, warm
        return statistics.median(
            model.complete(ASK, max_tokens=DECODE_TOKENS, temperature=0.0)
            .usage.tokens_per_second for _ in range(rounds))
    finally:
        model.unload()


def _ratio(gguf: Path, adapter: Path, rounds: int) -> tuple[float, float]:
    """Tokens/s without and with ``adapter``, measured in turns (base, adapter, base, ...)
    so that the machine's drift does not favour either."""
    base, tuned = [], []
    for _ in range(rounds):
        base.append(_decode_speed(gguf, [], 1))
        tuned.append(_decode_speed(gguf, [adapter], 1))
    return statistics.median(base), statistics.median(tuned)


def _anchor_speed(lora: Path | None, rounds: int) -> float:
    """llama-cpp-python's own ``Llama(lora_path=...)``, the anchor (prompt included)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(EMBEDDED_CHAT.require_path()),
                          lora_path=str(lora) if lora else None, n_ctx=512, verbose=False,
                          n_threads=usable_cores())  # as the backend's default
    try:
        speeds = []
        for _ in range(rounds):
            began = time.perf_counter()
            done = llm.create_completion(ASK, max_tokens=DECODE_TOKENS, temperature=0.0)
            speeds.append(done["usage"]["completion_tokens"] / (time.perf_counter() - began))
        return statistics.median(speeds)
    finally:
        llm.close()


def _llama_server_speed(lora: Path | None, rounds: int) -> float:
    """llama.cpp's own ``llama-server --lora`` (decode tokens/s from its timings)."""
    import httpx
    from llama_server_build import llama_server_binary  # benchmarks/, built once
    from server_process import _ServerProcess

    class LlamaServer(_ServerProcess):
        name = "llama-server"

        def command(self, port: int) -> list[str]:
            return [str(llama_server_binary()), "-m", str(EMBEDDED_CHAT.require_path()),
                    "--host", "127.0.0.1", "--port", str(port), "-np", "1", "-c", "512",
                    "-t", str(usable_cores()), *(["--lora", str(lora)] if lora else [])]

        def urls(self, port: int) -> tuple[str, str]:
            return (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/health")

    with LlamaServer() as url:
        def once(tokens: int) -> float:
            answer = httpx.post(f"{url}/completion", timeout=300, json={
                "prompt": ASK, "n_predict": tokens, "temperature": 0, "cache_prompt": False})
            return float(answer.json()["timings"]["predicted_per_second"])

        once(8)
        return statistics.median(once(DECODE_TOKENS) for _ in range(rounds))


def _attention_only(adapter: Path, target: Path) -> Path:
    """The adapter's attention projections alone, as a PEFT folder of its own (for the
    decode cost of fewer adapted layers; the weights are the trained ones)."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(adapter / "adapter_model.safetensors"))
    target.mkdir(parents=True, exist_ok=True)
    save_file({key: value for key, value in weights.items() if ".self_attn." in key},
              str(target / "adapter_model.safetensors"))
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    config["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    (target / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return target


def _wider_model(work: Path) -> tuple[Path, Path]:
    """A Llama of 1B's shape (hidden 2048, 16 blocks, MLP 8192: Llama 3.2 1B's) with
    random weights, as Q4_1 like the embedded model, and a random rank-16 adapter on all
    its linear layers: decode speed does not depend on what the weights say."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    checkpoint = converted_gguf(EMBEDDED_CHAT.require_path())[0]
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=2048, intermediate_size=8192,
        num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
        max_position_embeddings=4096, tie_word_embeddings=True))
    model.save_pretrained(work / "wide")
    tokenizer.save_pretrained(work / "wide")
    get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                     init_lora_weights=False)).save_pretrained(
        work / "wide-adapter")
    write_gguf(work / "wide", work / "wide-f16.gguf", "F16")
    quantize(str(work / "wide-f16.gguf"), "Q4_1", output=work / "wide-q4_1.gguf",
             progress=False)
    return work / "wide-q4_1.gguf", work / "wide-adapter"


def run_serving(work: Path, adapter: Path, results: dict, rounds: int = 5) -> None:
    embedded = EMBEDDED_CHAT.require_path()
    base, tuned = _ratio(embedded, adapter, rounds)
    attention = _attention_only(adapter, work / "adapter-attention")
    base_a, tuned_a = _ratio(embedded, attention, rounds)
    gguf = adapter_for_gguf(adapter, read_gguf_header(embedded), embedded)
    anchor_base, anchor_tuned = _anchor_speed(None, rounds), _anchor_speed(gguf, rounds)
    server_base, server_tuned = _llama_server_speed(None, rounds), \
        _llama_server_speed(gguf, rounds)
    wide_base, wide_tuned = _ratio(*_wider_model(work), rounds)
    # two slots: each adapter set keeps its own cached prompt (llamacpp_slots.choose_slot)
    model = LlamaCppModel("smollm2", adapters=[adapter], parallel=2)
    short = [{"role": "user", "content": "Hi"}]
    same, switched = [], []
    try:
        model.chat(short, max_tokens=1, temperature=0.0)
        for _ in range(rounds * 3):
            for lora, bucket in (([(0, 1.0)], same), ([(0, 1.0)], same), ([], switched)):
                began = time.perf_counter()
                model.chat(short, max_tokens=1, temperature=0.0, lora=lora)
                bucket.append(time.perf_counter() - began)
    finally:
        model.unload()
    results["serving"] = {
        "base_tokens_per_second": base, "adapter_tokens_per_second": tuned,
        "ratio": tuned / base, "attention_only_ratio": tuned_a / base_a,
        "llama_cpp_python_ratio": anchor_tuned / anchor_base,
        "llama_server_base": server_base, "llama_server_adapter": server_tuned,
        "llama_server_ratio": server_tuned / server_base,
        "wide_base_tokens_per_second": wide_base, "wide_adapter_tokens_per_second": wide_tuned,
        "wide_ratio": wide_tuned / wide_base,
        "request_after_same_adapter_ms": 1000 * statistics.median(same),
        "request_after_switch_ms": 1000 * statistics.median(switched)}
    print(f"serving: decode {tuned:.1f} tokens/s with the adapter, {base:.1f} without "
          f"({tuned / base:.2f}x; attention-only adapter {tuned_a / base_a:.2f}x; "
          f"llama-cpp-python's own lora_path {anchor_tuned / anchor_base:.2f}x; "
          f"llama-server --lora {server_tuned:.1f} and {server_base:.1f}, "
          f"{server_tuned / server_base:.2f}x); a 1B-shaped model (Q4_1): {wide_tuned:.1f} "
          f"and {wide_base:.1f}, {wide_tuned / wide_base:.2f}x; a 1-token request "
          f"{1000 * statistics.median(same):.0f} ms after its own adapter, "
          f"{1000 * statistics.median(switched):.0f} ms after a switch")


def run_prune(work: Path, paths: dict[str, Path], steps: int, results: dict) -> None:
    base = converted_gguf(EMBEDDED_CHAT.require_path())[0]
    figures = {"base": perplexity(base, paths["held"])}
    pruned = {}
    for strategy in ("importance", "random"):
        done = prune("smollm2", paths["train"], layer_ratio=0.25, strategy=strategy,
                     output=work / f"pruned-{strategy}")
        pruned[strategy] = done
        figures[strategy] = perplexity(done.path, paths["held"])
        figures[f"{strategy}_dropped"] = list(done.dropped)
    figures["importance_table"] = list(pruned["importance"].importance)
    recovered = distill("smollm2", pruned["importance"].path, paths["train"],
                        output=work / "distilled", max_steps=steps, batch_size=4,
                        max_length=LENGTH, learning_rate=1e-4, progress=True)
    figures["distilled"] = perplexity(recovered.path, paths["held"])
    lost = figures["importance"] - figures["base"]
    figures["recovered_share"] = (figures["importance"] - figures["distilled"]) / lost
    results["prune"] = figures
    print(f"prune 25% of blocks: perplexity {figures['base']:.2f} -> {figures['importance']:.2f}"
          f" by importance, {figures['random']:.2f} at random; distilled {steps} steps: "
          f"{figures['distilled']:.2f} ({figures['recovered_share']:.0%} of the loss "
          "recovered)")


def run_throughput(work: Path, paths: dict[str, Path], results: dict, steps: int = 8) -> None:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from adam_integrations.tools.tune_data import read_training_data, tokenize_training_data

    base = converted_gguf(EMBEDDED_CHAT.require_path())[0]
    ours = tune("smollm2", paths["train"], output=work / "throughput", max_steps=steps,
                batch_size=4, max_length=LENGTH, checkpointing=False, progress=False)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokens = tokenize_training_data(read_training_data(paths["train"]), tokenizer,
                                    max_length=LENGTH, model_name="smollm2")
    config = SFTConfig(output_dir=str(work / "plain"), per_device_train_batch_size=4,
                       max_steps=steps, max_length=LENGTH, learning_rate=2e-4,
                       report_to="none", use_cpu=True, bf16=False,
                       activation_checkpointing=False, save_strategy="no",
                       include_num_input_tokens_seen="non_padding")
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(base), args=config,
                         processing_class=tokenizer,
                         train_dataset=Dataset.from_list(list(tokens.sequences)),
                         peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
    began = time.perf_counter()
    trainer.train()
    plain = trainer.state.num_input_tokens_seen / (time.perf_counter() - began)
    results["throughput"] = {"tune_tokens_per_second": ours.tokens_per_second,
                             "sfttrainer_tokens_per_second": plain,
                             "ratio": ours.tokens_per_second / plain}
    print(f"throughput: tools.tune {ours.tokens_per_second:.0f} tokens/s, plain SFTTrainer "
          f"{plain:.0f} ({ours.tokens_per_second / plain:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--only", default="lora,agreement,serving,prune,throughput")
    parser.add_argument("--adapter", default=None,
                        help="an adapter trained already (skips the lora part's training)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="adam-tune-bench-"))
    paths = texts(work)
    results: dict = {"steps": args.steps, "length": LENGTH}
    adapter = None
    if args.adapter:
        adapter = Path(args.adapter)
    elif parts & {"lora", "agreement", "serving"}:
        adapter = run_lora(work, paths, args.steps, results)
    if "agreement" in parts:
        run_agreement(work, paths, adapter, results)
    if "serving" in parts:
        run_serving(work, adapter, results)
    if "prune" in parts:
        run_prune(work, paths, args.steps, results)
    if "throughput" in parts:
        run_throughput(work, paths, results)
    out = ROOT / "results" / f"tune-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
