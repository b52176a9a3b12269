"""The paper path's GPU steps on a full-size model with random weights, offline.

Builds the base model from its vendored config (`codealign/lm/hub_configs/`; phi-2 by
default, 2.78B parameters) with random weights in bfloat16 and a byte-level BPE
tokenizer trained here on MBPP and Code Alpaca text, so nothing is downloaded. Then,
each through the project's own code and timed on its own, with the peak GPU memory
each phase allocated:

1. `sft`: LoRA SFT steps (`codealign.specialists.sft.train_adapter`) with the paper
   profile's `sft` params (r 128 on every linear layer, batch 4 x accumulation 2, 1,024
   tokens, activation checkpointing), less what needs bitsandbytes: no nf4 base and
   `adamw_torch` for `paged_adamw_32bit`, with `sft.compute_dtype` bfloat16;
2. `reference`: the `pairs` stage's reference log-probs (`codealign.dpo.pairs.reference_logps`
   through TRL's fused head) of the DPO pairs, MBPP reference solutions against
   another problem's;
3. `dpo`: DPO steps (`codealign.dpo.train.make_trainer`) continuing the SFT adapter,
   with the paper's `dpo` params (batch 4 x accumulation 4, bfloat16);
4. `sample`: HF sampling (`codealign.evaluation.policy.Policy.sample`, the `hf` backend
   of the `sample` stage) with the paper's `sample.n`, temperature and token budget.

Prints one JSON object: per phase seconds, steps or rows, tokens per second and peak
GPU memory (`torch.cuda.max_memory_allocated`, reset before the phase), plus the
environment and what would change with real weights. `--tiny` runs the same logic on a
shrunken model on the CPU in well under a minute (tests/test_gpu_check.py).

    benchmarks/gpu_check.sh [--model Qwen/Qwen2.5-Coder-1.5B] [--tiny] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What random weights and this machine leave out, said in every report.
WITH_REAL_WEIGHTS = [
    "Tokens: a tokenizer trained here on MBPP and Code Alpaca text splits the same text into "
    "a different number of tokens than the model's own; per-token rates compare, per-item "
    "rates do not. The embedding and output layers keep the real vocabulary size, so the "
    "logits cost what the real model's do.",
    "Sampling length: random weights almost never emit the end-of-sequence token, so every "
    "row runs to the token budget (the worst case); a trained policy stops earlier.",
    "Loss values and pass rates mean nothing here; DPO pairs are reference solutions "
    "against another problem's, not mined ones.",
    "The paper's sft.quantization nf4 and paged_adamw_32bit need bitsandbytes, and "
    "sample.backend vllm needs vLLM; neither is installed on the check machine, so SFT "
    "here trains LoRA on a bfloat16 base (more memory than nf4, faster per step) and "
    "sampling runs the hf backend (slower than vLLM).",
]


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "trl", "datasets", "accelerate"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out


def texts(raw_dir: Path) -> list[str]:
    from codealign.curation.datasets import load_code_alpaca, load_mbpp

    out = []
    for record in load_mbpp(raw_dir=raw_dir):
        out += [record["text"], record["code"], *record["test_list"]]
    for record in load_code_alpaca(raw_dir):
        out += [record["question"], record["code"]]
    return out


def build_base(name: str, out: Path, *, tiny: bool, dtype: str, vocab: int, seed: int) -> int:
    """The model of `name`'s vendored config with random weights; returns its parameter count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from codealign.lm.fetch import shrink, vendored_config
    from codealign.pretraining.base_model import train_tokenizer

    tokenizer = train_tokenizer(texts(ROOT / "data/raw"), vocab)
    real = vendored_config(name)
    if tiny:
        config = shrink(real, len(tokenizer))
    else:  # full size; the vocabulary stays the real one, so the logits cost what they do
        config = {k: v for k, v in real.items() if not k.startswith("_")}
    config.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(
            AutoConfig.for_model(**config), dtype=getattr(torch, dtype)
        )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    count = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return count


class Phase:
    """Wall time and peak GPU memory of one phase."""

    def __init__(self, name: str, report: dict):
        self.name, self.report = name, report

    def __enter__(self):
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        row = self.report.setdefault(self.name, {})
        row["seconds"] = round(time.perf_counter() - self.start, 2)
        if torch.cuda.is_available():
            row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return False


def rate(row: dict, tokens: int) -> None:
    row["tokens"] = tokens
    row["tokens_per_s"] = round(tokens / row["seconds"], 1) if row["seconds"] else None


def conversation_tokens(tokenizer, question: str, answer: str, max_length: int) -> int:
    from codealign.evaluation import chat

    ids = tokenizer.apply_chat_template(
        chat.messages(question) + chat.answer_messages(answer), tokenize=True, return_dict=True
    )["input_ids"]
    return min(len(ids), max_length)


def run(args) -> dict:
    import torch

    from codealign.curation.datasets import load_mbpp, mbpp_to_sft
    from codealign.dpo.pairs import reference_logps, tokenize_pair
    from codealign.dpo.sample import sample_completions
    from codealign.dpo.train import make_trainer
    from codealign.evaluation.policy import load_policy, resolve_policy
    from codealign.params import load_params
    from codealign.specialists.sft import train_adapter

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        raise SystemExit("gpu_check: no CUDA device; use --tiny to check the logic on the CPU")
    dtype = "bfloat16" if cuda else "float32"
    paper = load_params(ROOT / "params/paper.yaml")
    report: dict = {
        "model": args.model,
        "weights": "random (vendored config" + (", shrunk" if args.tiny else "") + ")",
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "dtype": dtype,
        "versions": versions(),
    }
    small = dict(batch_size=2, grad_accum=1, max_length=args.max_length) if args.tiny else {}
    sft = dataclasses.replace(
        paper["sft"], quantization="none", compute_dtype=dtype, optimizer="adamw_torch",
        save_steps=10**6, logging_steps=1, **small,
    )  # fmt: skip
    dpo = dataclasses.replace(paper["dpo"], dtype=dtype, save_steps=0)
    if args.tiny:
        dpo = dataclasses.replace(dpo, batch_size=2, grad_accum=1)
    max_length = sft.max_length

    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_check."))
    base = work / "base"
    start = time.perf_counter()
    report["parameters"] = build_base(
        args.model, base, tiny=args.tiny, dtype=dtype, vocab=args.vocab, seed=0
    )
    report["build_seconds"] = round(time.perf_counter() - start, 2)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    mbpp = load_mbpp("train", ROOT / "data/raw")
    records = mbpp_to_sft(mbpp)

    # 1. SFT
    items = args.sft_steps * sft.batch_size * sft.grad_accum
    lengths = [
        conversation_tokens(tokenizer, r["question"], r["code"], max_length) for r in records
    ]
    adapter = work / "sft"
    with Phase("sft", report):
        result = train_adapter(
            base, records, [], sft, adapter, work / "sft_ckpt", 0, max_steps=args.sft_steps
        )
    row = report["sft"]
    row.update(
        steps=result["steps"],
        items=items,
        lora_r=sft.lora_r,
        batch=f"{sft.batch_size} x {sft.grad_accum}",
        trainable_parameters=result["trainable_parameters"],
    )
    rate(row, round(items * sum(lengths) / len(lengths)))  # items x mean tokens per item

    # 2. reference log-probs of the pairs, 3. DPO continuing the SFT adapter
    n_pairs = args.dpo_steps * dpo.batch_size * dpo.grad_accum
    pairs = [
        {
            "pair_id": f"pair/{i}",
            "task_id": str(mbpp[i % len(mbpp)]["task_id"]),
            "question": mbpp[i % len(mbpp)]["text"],
            "chosen": mbpp[i % len(mbpp)]["code"],
            "rejected": mbpp[(i + 1) % len(mbpp)]["code"],
        }
        for i in range(n_pairs)
    ]
    spec = resolve_policy(adapter)
    with Phase("reference", report):
        policy = load_policy(spec, dtype=dtype, fused_lm_head=True)
        pairs, dropped = reference_logps(
            policy.model, policy.tokenizer, pairs, batch_size=dpo.batch_size,
            max_length=max_length, progress=False,
        )  # fmt: skip
        del policy
    pair_tokens = 0
    for pair in pairs:
        ids = tokenize_pair(tokenizer, pair)
        prompt = len(ids["prompt_ids"])
        pair_tokens += min(prompt + len(ids["chosen_ids"]), max_length)
        pair_tokens += min(prompt + len(ids["rejected_ids"]), max_length)
    report["reference"].update(pairs=len(pairs), dropped_too_long=dropped)
    rate(report["reference"], pair_tokens)
    with Phase("dpo", report):
        trainer = make_trainer(
            spec, pairs, dpo, max_steps=args.dpo_steps, max_length=max_length, seed=0,
            work_dir=work / "dpo",
        )  # fmt: skip
        trainer.train()
        steps = int(trainer.state.global_step)
        del trainer
    report["dpo"].update(
        steps=steps, pairs=len(pairs), batch=f"{dpo.batch_size} x {dpo.grad_accum}"
    )
    rate(report["dpo"], pair_tokens)

    # 4. sampling from the SFT policy
    s = paper["sample"]
    n = args.n or s.n
    questions = [r["text"] for r in mbpp[: args.prompts]]
    with Phase("sample", report):
        policy = load_policy(spec, dtype=dtype)
        answers, _ = sample_completions(
            policy, questions, n=n, temperature=s.temperature, max_new_tokens=args.max_new_tokens,
            batch_size=args.sample_batch, seed=0, progress=False,
        )  # fmt: skip
        del policy
    generated = sum(  # re-encoded answers, at most the budget each
        min(len(tokenizer(text, add_special_tokens=False)["input_ids"]), args.max_new_tokens)
        for row in answers
        for text in row
    )
    report["sample"].update(
        prompts=len(questions), n=n, rows=len(questions) * n, max_new_tokens=args.max_new_tokens,
        batch_size=args.sample_batch, backend="hf",
    )  # fmt: skip
    rate(report["sample"], generated)
    report["with_real_weights"] = WITH_REAL_WEIGHTS
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="microsoft/phi-2", help="a vendored hub config")
    parser.add_argument("--tiny", action="store_true", help="a shrunken model on the CPU")
    parser.add_argument("--sft-steps", type=int, default=None)
    parser.add_argument("--dpo-steps", type=int, default=None)
    parser.add_argument("--prompts", type=int, default=None, help="sampled questions")
    parser.add_argument("--n", type=int, default=None, help="answers per question (sample.n)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--sample-batch", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=256, help="--tiny only")
    parser.add_argument("--vocab", type=int, default=None, help="tokenizer vocabulary")
    parser.add_argument("--work", default=None, help="work dir (default: a temp dir)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.tiny:
        defaults = dict(sft_steps=2, dpo_steps=2, prompts=2, n=2, max_new_tokens=16)
        defaults.update(sample_batch=4, vocab=1024)
    else:
        defaults = dict(sft_steps=20, dpo_steps=8, prompts=8, n=0, max_new_tokens=512)
        defaults.update(sample_batch=64, vocab=8192)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    with contextlib.redirect_stdout(sys.stderr):  # trainers print their logs: keep stdout JSON
        report = run(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
