"""Importing the app has no side effects, and serving only remote engines never loads torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def files_under(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_importing_the_ui_writes_no_file():
    before = files_under(REPO / "playground")
    subprocess.run([sys.executable, "-c", "import playground.web.server, playground.web.ui.verbatim"], cwd=REPO,
                   check=True)
    assert files_under(REPO / "playground") == before


def test_a_remote_only_app_imports_neither_torch_nor_transformers(tmp_path):
    script = (
        "import sys\n"
        "from playground.config import load_settings\n"
        "from playground.bootstrap import build_playground\n"
        "from playground.web.server import create_app\n"
        f"settings = load_settings(['--backend', 'tgi', '--endpoint', 'http://127.0.0.1:9', '--model', 'starcoder',"
        f" '--data-dir', {str(tmp_path)!r}], {{}})\n"
        "playground, _ = build_playground(settings)\n"
        "create_app(playground)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
