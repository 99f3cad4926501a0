"""Repository context for a fill: other files of the project, spelled the way the served model learned them.

* StarCoder saw one file per document, with metadata tokens, documents joined
  by end-of-text: ``<reponame>NAME<filename>PATH\\nTEXT<|endoftext|>``.
* StarCoder2 saw whole repositories: ``<repo_name>NAME<file_sep>PATH\\nTEXT
  <file_sep>...``, the edited file last, its path the first line after
  ``<fim_prefix>``.
* A model trained with neither gets the files as comments at the top of the
  prefix, in the edited file's comment syntax.

The files take what the prefix and suffix nearest the hole leave of the prompt
budget, in the order given (an editor sends the most relevant first): each is
kept whole, cut to its first lines, or left out. ``Spent`` says which, per
part, for the record and the Fill tab.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from playground.errors import InputError
from playground.prompt import Special
from playground.prompting.budget import TokenCounter, check_text
from playground.prompting.prepared import Spent
from playground.registry import ModelSpec

MAX_FILES = 64  # llama.vscode sends 16 chunks by default; more than this is not context, it is a repository
_LINE_COMMENT = {  # by extension; "#" for the rest (Python, shell, YAML, Ruby, R, TOML...)
    "//": ("c", "h", "cc", "cpp", "hpp", "cs", "java", "js", "jsx", "ts", "tsx", "go", "rs", "kt", "swift", "scala",
           "php", "dart", "zig", "proto"),
    "--": ("sql", "lua", "hs", "elm", "ada"),
    "%": ("tex", "m", "erl"),
    ";": ("lisp", "clj", "el", "scm", "asm"),
}
Segments = list[Special | str]


@dataclass(frozen=True)
class ContextFile:
    filename: str
    text: str


@dataclass(frozen=True)
class RepoContext:
    """The repository around the edited file: its name and other files, most relevant first."""

    repo_name: str = ""
    files: tuple[ContextFile, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.repo_name or self.files)

    @classmethod
    def checked(cls, repo_name: str, files: Sequence[ContextFile]) -> RepoContext:
        check_text("The repository name", repo_name, allow_empty=True)
        if "\n" in repo_name or len(repo_name) > 256:
            raise InputError("The repository name must be one line of at most 256 characters, e.g. bigcode/app.")
        if len(files) > MAX_FILES:
            raise InputError(f"{len(files)} context files were sent; at most {MAX_FILES} are taken. "
                             "Send the most relevant ones.")
        for file in files:
            check_filename(file.filename, "A context file's name")
            check_text(f"The context file {file.filename!r}", file.text, allow_empty=True)
        return cls(repo_name, tuple(files))


NO_CONTEXT = RepoContext()


def check_filename(filename: str, what: str = "The filename") -> None:
    check_text(what, filename, allow_empty=True)
    if "\n" in filename or len(filename) > 256:
        raise InputError(f"{what} must be one line of at most 256 characters, e.g. src/utils.py.")


def comment_mark(filename: str) -> str:
    extension = PurePosixPath(filename).suffix.lstrip(".").lower()
    return next((mark for mark, extensions in _LINE_COMMENT.items() if extension in extensions), "#")


def _lines(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def file_segments(spec: ModelSpec, file: ContextFile, repo_name: str, mark: str) -> Segments:
    """One context file in the model's format."""
    if spec.repo_format == "starcoder2":
        return [Special("<file_sep>"), f"{file.filename}\n{file.text}"]
    if spec.repo_format == "starcoder":
        name: Segments = [Special("<reponame>"), repo_name] if repo_name else []
        assert spec.filename_token is not None
        return [*name, Special(spec.filename_token), f"{file.filename}\n{file.text}", Special(spec.end_of_text)]
    return [f"{mark} {file.filename}\n{_lines(file.text)}"]


def opening(spec: ModelSpec, context: RepoContext, mark: str) -> Segments:
    """What comes once before the files: StarCoder2's repository name, or its comment."""
    if not context.repo_name:
        return []
    if spec.repo_format == "starcoder2":
        return [Special("<repo_name>"), context.repo_name]
    return [f"{mark} Repository: {context.repo_name}\n"] if spec.repo_format == "comments" else []


def closing(spec: ModelSpec, filename: str, mark: str) -> Segments:
    """What comes after the files, before the edited file: StarCoder2's separator, or its path as a comment."""
    if spec.repo_format == "starcoder2":
        return [Special("<file_sep>")]
    return [f"{mark} {filename}\n"] if spec.repo_format == "comments" and filename else []


def size(segments: Segments, count: TokenCounter) -> int:
    return sum(1 if isinstance(s, Special) else count(s) for s in segments)


@dataclass(frozen=True)
class Fitted:
    """The context that fits: its segments, in order, and what each file took."""

    segments: Segments
    tokens: int
    spent: tuple[Spent, ...]
    notice: str | None


def fit_context(spec: ModelSpec, context: RepoContext, filename: str, room: int, count: TokenCounter) -> Fitted:
    """The context files, in order, within ``room`` tokens: each whole, cut to its first lines, or left out.
    The repository name and separators come only when at least one file (or the name alone) fits."""
    mark = comment_mark(filename or (context.files[0].filename if context.files else ""))
    frame = opening(spec, context, mark) + closing(spec, filename, mark)
    # StarCoder2's edited file opens with its path, there only when context comes before it.
    used = size(frame, count) + (count(filename + "\n") if spec.repo_format == "starcoder2" and filename else 0)
    if not context or used > room:
        left = [Spent(f"file {f.filename}", 0, "left out") for f in context.files]
        return Fitted([], 0, tuple(left), _notice(left) if left else None)
    kept: Segments = []
    spent: list[Spent] = []
    for file in context.files:
        segments, tokens, how = _fit_file(spec, file, context.repo_name, mark, room - used, count)
        kept += segments
        used += tokens
        spent.append(Spent(f"file {file.filename}", tokens, how))
    segments = opening(spec, context, mark) + kept + closing(spec, filename, mark)
    return Fitted(segments, used, tuple(spent), _notice(spent))


def _fit_file(spec: ModelSpec, file: ContextFile, repo_name: str, mark: str, room: int,
              count: TokenCounter) -> tuple[Segments, int, str]:
    whole = file_segments(spec, file, repo_name, mark)
    tokens = size(whole, count)
    lines = file.text.splitlines(keepends=True)
    if tokens <= room:
        return whole, tokens, f"all {len(lines)} lines"
    frame = size(file_segments(spec, ContextFile(file.filename, ""), repo_name, mark), count)
    taken, used = 0, frame
    for line in lines:  # line by line: a file cut anywhere else would end mid-token
        cost = count(line)
        if used + cost > room:
            break
        taken, used = taken + 1, used + cost
    if not taken:
        return [], 0, "left out"
    cut = ContextFile(file.filename, "".join(lines[:taken]))
    segments = file_segments(spec, cut, repo_name, mark)
    return segments, size(segments, count), f"first {taken} of {len(lines)} lines"


def _notice(spent: Sequence[Spent]) -> str | None:
    short = [s for s in spent if not s.kept.startswith("all ")]
    if not short:
        return None
    said = "; ".join(f"{s.part[5:]}: {s.kept}" for s in short)
    return (f"Repository context: {len(spent) - len(short)} of {len(spent)} files fit whole in the prompt "
            f"after the code around the hole ({said}).")


# -- the Fill tab's listing: files pasted one after another, each under a "==> path <==" line (as `head` prints) --

_HEADER = re.compile(r"^==> (.+?) <==$", re.MULTILINE)


def read_listing(listing: str) -> list[ContextFile]:
    """The files of a listing; text before the first header is refused, not guessed at."""
    if not listing.strip():
        return []
    parts = _HEADER.split(listing)
    if parts[0].strip():
        raise InputError("Start each context file with a line '==> path/to/file.py <==', then its text.")
    return [ContextFile(name.strip(), text.removeprefix("\n")) for name, text in zip(parts[1::2], parts[2::2],
                                                                                    strict=True)]


def write_listing(files: Sequence[Mapping[str, str]]) -> str:
    """A listing of recorded files; ``read_listing`` gives them back (with a line break ending each file but
    the last, where it had none: the next header needs its own line)."""
    return "".join(f"==> {f['filename']} <==\n{f['text']}" + ("" if f["text"].endswith("\n") or i == len(files) - 1
                                                             else "\n") for i, f in enumerate(files))
