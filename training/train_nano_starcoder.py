"""Train nano-starcoder: a tiny GPTBigCode (multi-query) model with StarCoder's
tokens and FIM objective, on the Python standard library and permissively
licensed packages (see ``playground/attribution/corpus.py``), on CPU.

    python -m training.train_nano_starcoder --out models/nano-starcoder

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

from training.corpus import Corpus, SourceFile, corpus_fingerprint, load_corpus
from training.fim import FimPolicy, SpecialIds, build_sample
from training.packages import PACKAGE_LIST, fetch, list_fingerprint

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


def samples(files, spans, tokenizer, ids, policy, seq_len, rng):
    """Endless seeded stream of (token ids, labels), one shuffled epoch after another."""
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    order = list(range(len(spans)))
    while True:
        rng.shuffle(order)
        for span_index in order:
            file_index, start, end, ends_doc = spans[span_index]
            source = files[file_index]
            # Metadata only where a window starts a file, as in StarCoder's data.
            filename = source.path if start == 0 and rng.random() < 0.5 else None
            sample = build_sample(
                source.text[start:end], encode=encode, ids=ids, policy=policy,
                rng=rng, filename=filename, ends_document=ends_doc,
            )[: seq_len - 1]
            labels = list(sample)
            if sample[-1] != ids.end_of_text:
                # A window cut inside a file: a separator keeps the next sample apart, but
                # the model must not learn that the file ended here.
                sample, labels = sample + [ids.end_of_text], labels + [-100]
            yield sample, labels


WAITING_LIMIT = 8  # samples set aside for a later row; past this, the row's rest is padding


def pack_row(stream, waiting: list, seq_len: int, pad_id: int) -> tuple[list[int], list[int]]:
    """One row of exactly ``seq_len`` tokens: whole samples, first fit, then padding.

    No sample is cut: a FIM middle in the next row would lose the prefix and suffix it depends on,
    and a cut left-to-right sample would start a row mid-file. A sample that does not fit the room
    left waits, oldest first, for a later row; since every sample fits an empty row, the oldest
    starts the next one, so each is placed within a few rows and the FIM share trained on is the
    one drawn. (The first v2 packer let FIM samples wait behind cut left-to-right tails with no
    bound: at a FIM rate of 0.8 only about 10% of the tokens trained on were FIM.)
    """
    row_ids: list[int] = []
    row_labels: list[int] = []
    while len(row_ids) < seq_len:
        space = seq_len - len(row_ids)
        fitting = next((i for i, item in enumerate(waiting) if len(item[0]) <= space), None)
        if fitting is not None:
            sample, labels = waiting.pop(fitting)
        elif len(waiting) < WAITING_LIMIT:
            item = next(stream)
            if len(item[0]) > space:
                waiting.append(item)
                continue
            sample, labels = item
        else:
            break
        row_ids += sample
        row_labels += labels
    padding = seq_len - len(row_ids)
    return row_ids + [pad_id] * padding, row_labels + [-100] * padding


def batches(stream, seq_len, batch_size, pad_id):
    """Samples packed into rows of ``seq_len`` (see pack_row), separated by their end-of-text."""
    waiting: list = []
    while True:
        rows = [pack_row(stream, waiting, seq_len, pad_id) for _ in range(batch_size)]
        yield torch.tensor([ids for ids, _ in rows]), torch.tensor([labels for _, labels in rows])


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/nano-starcoder"))
    parser.add_argument("--cache", type=Path, help="where the corpus packages are installed (default: fetch)")
    parser.add_argument("--steps", type=int, default=7000)  # the shipped run; ~86 min on 2 idle cores
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512, help="trained context = config n_positions")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100)
    # StarCoder used 0.5 and 0.5. A FIM sample still trains left to right on its prefix and suffix,
    # and the app prompts nano-starcoder suffix first, so v5 spends most samples there (v4: 0.75).
    parser.add_argument("--fim-rate", type=float, default=0.9)
    parser.add_argument("--spm-rate", type=float, default=0.9)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="bf16 autocast for the forward pass (--no-bf16: all fp32)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--stop-after", type=int,
                        help="end after this many steps, on the full run's schedule (to check a run reproduces)")
    return parser.parse_args(argv)


def corpus_log(corpus: Corpus, cache: Path) -> dict:
    """Which files trained the model, per package with its version and licence, for attribution."""
    packages: dict[str, dict] = {}
    for item in corpus.train:
        entry = packages.setdefault(item.package, {"package": item.package, "version": item.version,
                                                   "licence": item.licence, "files": []})
        entry["files"].append(item.path)
    held = sorted({(f.package, f.version, f.licence) for f in corpus.held_out_packages})
    return {
        "package_list": str(PACKAGE_LIST.relative_to(Path.cwd())) if PACKAGE_LIST.is_relative_to(Path.cwd())
        else PACKAGE_LIST.name,
        "package_list_sha256": list_fingerprint(),
        "package_cache": cache.name,
        "fingerprint": corpus_fingerprint((f.package, f.path, f.text) for f in corpus.train),
        "train_chars": sum(len(f.text) for f in corpus.train),
        "skipped": corpus.skipped,
        "held_out_packages": [{"package": p, "version": v, "licence": lic} for p, v, lic in held],
        "packages": list(packages.values()),
    }


def train(args, model, stream, out: Path) -> tuple[list[dict], int, float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    curve, started, seen_tokens = [], time.perf_counter(), 0
    model.train()
    last = min(args.steps, args.stop_after or args.steps)  # the schedule is always the full run's
    for step in range(last):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr, args.warmup)
        input_ids, labels = next(stream)
        # bf16 matrix products on CPUs that have them (1.4x here); weights and optimizer stay fp32.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen_tokens += int((labels != -100).sum())
        if step % 25 == 0 or step == last - 1:
            elapsed = time.perf_counter() - started
            curve.append({"step": step, "loss": round(loss.item(), 4), "elapsed_s": round(elapsed, 1)})
            print(f"step {step} loss {loss.item():.3f} {seen_tokens / elapsed:.0f} tok/s {elapsed / 60:.1f} min",
                  flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step == last - 1:
            model.save_pretrained(out)
    return curve, seen_tokens, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    cache = args.cache or fetch()
    corpus = load_corpus(cache)
    train_files = corpus.train
    print(f"corpus: {len(train_files)} train files, {len(corpus.held_out_packages)} held-out package files, "
          f"{len(corpus.held_out_stdlib)} held-out stdlib files", flush=True)
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
    policy = FimPolicy(fim_rate=args.fim_rate, spm_rate=args.spm_rate)
    stream = batches(samples(train_files, spans, tokenizer, ids, policy, args.seq_len, rng),
                     args.seq_len, args.batch_size, ids.end_of_text)
    curve, seen_tokens, elapsed = train(args, model, stream, args.out)

    log = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "parameters": params,
        "train_files": len(train_files),
        "held_out_files": [f.path for f in corpus.held_out_stdlib],
        "train_tokens_in_corpus": train_tokens,
        "tokens_seen": seen_tokens,
        "epochs": round(seen_tokens / train_tokens, 3),
        "training_seconds": round(elapsed),
        "tokens_per_second": round(seen_tokens / elapsed),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} CPU threads",
        "loss_curve": curve,
        "corpus": corpus_log(corpus, cache),
    }
    (args.out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"done in {elapsed / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
