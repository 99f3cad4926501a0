"""Train nano-starcoder: a tiny GPTBigCode (multi-query) model with StarCoder's
tokens and FIM objective, on the Python standard library, on CPU.

    python -m training.train_nano_starcoder --out models/nano-starcoder --steps 1800

The run is seeded: the same interpreter, flags and library versions give the
same weights. It writes the model and tokenizer folder (loadable with plain
``AutoTokenizer`` / ``AutoModelForCausalLM``), plus ``training_log.json`` with
the settings, throughput and loss curve that the model card quotes.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM, PreTrainedTokenizerFast

from training.corpus import SourceFile, load_stdlib
from training.fim import FimPolicy, SpecialIds, build_sample

# StarCoder's special tokens, same spellings and ids 0-4, then its metadata tokens.
STARCODER_SPECIAL_TOKENS = [
    "<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>",
    "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
    "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>",
    "<empty_output>", "<commit_before>", "<commit_msg>", "<commit_after>", "<reponame>",
]


def train_tokenizer(files: list[SourceFile], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    # Digits one by one and byte-level BPE, as StarCoder's tokenizer does.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=STARCODER_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((f.text for f in files), trainer=trainer)
    for expected_id, token in enumerate(STARCODER_SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == expected_id, token
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, out: Path, context_length: int) -> PreTrainedTokenizerFast:
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=STARCODER_SPECIAL_TOKENS[1:],
        model_max_length=context_length,
        clean_up_tokenization_spaces=False,
    )
    wrapped.save_pretrained(out)
    # A config naming the generic fast class (not v5's TokenizersBackend) loads
    # in transformers 4.x as well as 5.x.
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["additional_special_tokens"] = STARCODER_SPECIAL_TOKENS[1:]
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return wrapped


def windows(files: list[SourceFile], tokenizer: Tokenizer, length: int) -> list[tuple[int, int, int, bool]]:
    """(file index, char start, char end, ends_document) for consecutive token windows."""
    out = []
    encodings = tokenizer.encode_batch([f.text for f in files], add_special_tokens=False)
    for index, encoding in enumerate(encodings):
        offsets = encoding.offsets
        for start in range(0, len(offsets), length):
            stop = min(start + length, len(offsets))
            char_end = offsets[stop - 1][1] if stop < len(offsets) else len(files[index].text)
            out.append((index, offsets[start][0], char_end, stop == len(offsets)))
    return out


def batches(files, spans, tokenizer, ids, policy, seq_len, batch_size, rng):
    """Endless seeded stream of (input_ids, labels) batches, one shuffled epoch after another."""
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    order = list(range(len(spans)))
    while True:
        rng.shuffle(order)
        for first in range(0, len(order) - batch_size + 1, batch_size):
            rows = []
            for span_index in order[first : first + batch_size]:
                file_index, start, end, ends_doc = spans[span_index]
                source = files[file_index]
                # Metadata only where a window starts a file, as in StarCoder's data.
                filename = source.path if start == 0 and rng.random() < 0.5 else None
                sample = build_sample(
                    source.text[start:end], encode=encode, ids=ids, policy=policy,
                    rng=rng, filename=filename, ends_document=ends_doc,
                )[:seq_len]
                rows.append(sample)
            input_ids = torch.full((batch_size, seq_len), ids.end_of_text, dtype=torch.long)
            labels = torch.full((batch_size, seq_len), -100, dtype=torch.long)
            for row, sample in enumerate(rows):
                input_ids[row, : len(sample)] = torch.tensor(sample)
                labels[row, : len(sample)] = torch.tensor(sample)
            yield input_ids, labels


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/nano-starcoder"))
    parser.add_argument("--steps", type=int, default=1800)  # the shipped run; ~80 min on 2 busy cores
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512, help="trained context = config n_positions")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    train_files, held_out = load_stdlib()
    print(f"corpus: {len(train_files)} train files, {len(held_out)} held out", flush=True)
    tokenizer = train_tokenizer(train_files, args.vocab_size)
    save_tokenizer(tokenizer, args.out, args.seq_len)
    ids = SpecialIds(*(tokenizer.token_to_id(t) for t in
                       ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<filename>")))
    # Room for the FIM sentinels and the extra tokens that cutting at the hole costs.
    spans = windows(train_files, tokenizer, args.seq_len - 16)
    train_tokens = sum(len(e.ids) for e in tokenizer.encode_batch([f.text for f in train_files]))
    print(f"{train_tokens} train tokens in {len(spans)} windows", flush=True)

    config = GPTBigCodeConfig(
        vocab_size=args.vocab_size, n_positions=args.seq_len, n_embd=args.n_embd,
        n_layer=args.n_layer, n_head=args.n_head, multi_query=True,
        activation_function="gelu_pytorch_tanh", bos_token_id=0, eos_token_id=0,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    model = GPTBigCodeForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    stream = batches(train_files, spans, tokenizer, ids, FimPolicy(), args.seq_len, args.batch_size, rng)

    curve, started, seen_tokens = [], time.perf_counter(), 0
    model.train()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr, args.warmup)
        input_ids, labels = next(stream)
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen_tokens += int((labels != -100).sum())
        if step % 25 == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - started
            curve.append({"step": step, "loss": round(loss.item(), 4), "elapsed_s": round(elapsed, 1)})
            print(f"step {step} loss {loss.item():.3f} {seen_tokens / elapsed:.0f} tok/s {elapsed / 60:.1f} min", flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step == args.steps - 1:
            model.save_pretrained(args.out)

    elapsed = time.perf_counter() - started
    log = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "parameters": params,
        "train_files": len(train_files),
        "held_out_files": [f.path for f in held_out],
        "train_tokens_in_corpus": train_tokens,
        "tokens_seen": seen_tokens,
        "training_seconds": round(elapsed),
        "tokens_per_second": round(seen_tokens / elapsed),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} CPU threads",
        "loss_curve": curve,
    }
    (args.out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"done in {elapsed / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
