"""bench/gpu_check.py in its CPU dry-run mode, so it cannot rot before a GPU runs it.

The dry run goes through every section the GPU run measures (bandwidth, dynamic and static cache,
the local backend against raw generate, a device_map load bounded by max_memory) on tiny shapes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_runs_every_section_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run", "--json", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    tiny = report["models"]["tiny"]
    assert report["copy_bandwidth_bytes_per_s"] > 0 and tiny["bandwidth_limit_tokens_per_s"] > 0
    assert tiny["dynamic_cache"] > 0 and tiny["static_cache"] > 0
    assert tiny["backend_vs_raw"]["backend_tokens"] == report["tokens"]  # the backend made every token asked
    assert tiny["split"]["decode_tokens_per_s"] > 0 and tiny["split"]["modules_per_device"]
    assert "local backend" in done.stdout and "bandwidth limit" in done.stdout


def test_without_a_gpu_the_real_check_says_how_to_run_the_dry_one(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "--dry-run" in done.stderr
