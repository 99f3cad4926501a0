"""Train nano-starcoder: a tiny GPTBigCode (multi-query) model with StarCoder's
tokens and FIM objective, on the Python standard library and permissively
licensed packages (see ``playground/attribution/corpus.py``), on CPU.

    python -m training.train_nano_starcoder --out models/nano-starcoder

trains fresh weights; the shipped v6 is v5's weights trained further on the
v6 packer (``--init-from``; the model card has its exact command and why).
The run is seeded: the same interpreter, flags and library versions give the
same weights. It writes the model and tokenizer folder (loadable with plain
``AutoTokenizer`` / ``AutoModelForCausalLM``), plus ``training_log.json`` with
the settings, throughput and loss curve that the model card quotes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM, PreTrainedTokenizerFast

from training.corpus import Corpus, SourceFile, corpus_fingerprint, load_corpus
from training.fim import BEFORE_NEWLINE_HOLES, ONE_LINE_HOLES, FimPolicy, SpecialIds
from training.packages import PACKAGE_LIST, fetch, list_fingerprint
from training.packing import Reader, batches

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


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/nano-starcoder"))
    parser.add_argument("--cache", type=Path, help="where the corpus packages are installed (default: fetch)")
    parser.add_argument("--steps", type=int, default=7000)  # the shipped v5 and v6 runs; about 90 min on 2 idle cores
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512, help="trained context = config n_positions")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100)
    # StarCoder used 0.5 and 0.5. A FIM sample still trains left to right on its prefix and suffix,
    # and the app prompts nano-starcoder suffix first, so v5 and v6 spend most units there (v4: 0.75).
    parser.add_argument("--fim-rate", type=float, default=0.9)
    parser.add_argument("--spm-rate", type=float, default=0.9)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="bf16 autocast for the forward pass (--no-bf16: all fp32, for CPUs "
                             "without AVX-512 BF16, where autocast is 30x slower)")
    parser.add_argument("--init-from", type=Path,
                        help="a model folder to keep training (its weights and tokenizer) instead of fresh weights")
    parser.add_argument("--end-of-text-weight", type=float, default=1.0,
                        help="loss weight of <|endoftext|> targets (the runs after v6: 10; none shipped)")
    parser.add_argument("--middle-start-weight", type=float, default=1.0,
                        help="loss weight of each FIM middle's first target (the second run after v6: 10)")
    parser.add_argument("--before-newline-holes", action="store_true",
                        help="most line holes stop before their newline (training.fim.BEFORE_NEWLINE_HOLES)")
    parser.add_argument("--one-line-holes", action="store_true",
                        help="single whole lines are most holes (training.fim.ONE_LINE_HOLES)")
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


def train(args, model, stream, out: Path, end_of_text: int) -> tuple[list[dict], int, float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    curve, started, seen_tokens = [], time.perf_counter(), 0
    model.train()
    last = min(args.steps, args.stop_after or args.steps)  # the schedule is always the full run's
    for step in range(last):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr, args.warmup)
        input_ids, labels, starts = next(stream)
        # bf16 matrix products on CPUs that have them (1.4x here); weights and optimizer stay fp32.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(input_ids=input_ids).logits
        loss = weighted_loss(logits.float(), labels, starts, end_of_text, args)
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


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, starts: torch.Tensor, end_of_text: int,
                  args: argparse.Namespace) -> torch.Tensor:
    """Next-token cross-entropy with a fill's two decisions counted more: each ``<|endoftext|>`` target
    (where a middle ends) ``args.end_of_text_weight`` times, each middle's first target (where it begins
    instead of ending at once) ``args.middle_start_weight`` times. Both are 1 for the shipped v6.

    Why they exist: v6 saw end-of-text as 0.2-0.5 % of its targets and, after a correct line, gave it
    0.008, so its fills ran on. With end-of-text weighted 10 times (2,000 steps on v6) middles ended, but
    41 % of greedy middles came back empty and the suffix helped on 40 % of lines against v6's 66 %:
    suffix first, nothing marks where the prefix stops, and where a middle's start looks like an end the
    weight said end. Weighting the start alike as well gave 48 %. The model card has both runs.
    """
    targets = labels[:, 1:].reshape(-1)
    losses = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets, ignore_index=-100,
                             reduction="none")
    weights = torch.ones_like(losses)
    weights[targets == end_of_text] = args.end_of_text_weight
    weights[starts[:, 1:].reshape(-1)] = args.middle_start_weight
    weights *= targets != -100
    return (losses * weights).sum() / weights.sum()


def build_model(args: argparse.Namespace) -> GPTBigCodeForCausalLM:
    """Fresh weights of the configured shape, or the weights in ``--init-from`` to train further."""
    if args.init_from:
        model = GPTBigCodeForCausalLM.from_pretrained(args.init_from, dtype=torch.float32)
        if model.config.n_positions != args.seq_len:
            raise SystemExit(f"{args.init_from} was trained on {model.config.n_positions} positions, not {args.seq_len}")
        return model
    config = GPTBigCodeConfig(
        vocab_size=args.vocab_size, n_positions=args.seq_len, n_embd=args.n_embd,
        n_layer=args.n_layer, n_head=args.n_head, multi_query=True,
        activation_function="gelu_pytorch_tanh", bos_token_id=0, eos_token_id=0,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    return GPTBigCodeForCausalLM(config)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    # Continuing from earlier weights keeps their tokenizer: the embeddings are indexed by its ids.
    tokenizer = (Tokenizer.from_file(str(args.init_from / "tokenizer.json")) if args.init_from
                 else train_tokenizer(train_files, args.vocab_size))
    save_tokenizer(tokenizer, args.out, args.seq_len)
    ids = SpecialIds.of(tokenizer)
    train_tokens = sum(len(e.ids) for e in tokenizer.encode_batch([f.text for f in train_files]))
    print(f"{train_tokens} train tokens", flush=True)

    model = build_model(args)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters", flush=True)
    shapes = (BEFORE_NEWLINE_HOLES if args.before_newline_holes else {}) | (ONE_LINE_HOLES if args.one_line_holes else {})
    policy = FimPolicy(fim_rate=args.fim_rate, spm_rate=args.spm_rate, **shapes)
    stream = batches(Reader(train_files, tokenizer, ids, rng), policy, args.seq_len, args.batch_size, rng)
    curve, seen_tokens, elapsed = train(args, model, stream, args.out, ids.end_of_text)

    log = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "parameters": params,
        "initial_weights_sha256": file_digest(args.init_from / "model.safetensors") if args.init_from else None,
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
