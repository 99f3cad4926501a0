"""The nano-starcoder corpus as the training scripts see it: the product's definition, re-exported.

What the corpus is (the standard library plus the pinned packages, the
held-out splits, the file filters, the fingerprint) is defined once, in
``playground.attribution.corpus``, because the playground's default
attribution index has to read the very files the model was trained on. The
training scripts keep importing these names from here.
"""

from __future__ import annotations

from playground.attribution.corpus import (
    HELD_OUT_PERCENT,
    MAX_DIGIT_SHARE,
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    PACKAGE_BYTES_CAP,
    STDLIB,
    STDLIB_LICENCE,
    Corpus,
    SourceFile,
    corpus_fingerprint,
    is_held_out,
    load_corpus,
    load_package,
    load_stdlib,
    read_source,
    stdlib_root,
)

__all__ = [
    "HELD_OUT_PERCENT",
    "MAX_DIGIT_SHARE",
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "PACKAGE_BYTES_CAP",
    "STDLIB",
    "STDLIB_LICENCE",
    "Corpus",
    "SourceFile",
    "corpus_fingerprint",
    "is_held_out",
    "load_corpus",
    "load_package",
    "load_stdlib",
    "read_source",
    "stdlib_root",
]
