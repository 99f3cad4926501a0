#!/usr/bin/env bash
# Audits every package installed in .venv, and the GPU extras, against the advisories PyPI
# publishes, with pip-audit.
# Fails on a known vulnerability. An index that serves packages but no advisory data (this
# project's machines reach a PyPI mirror of that kind) would make pip-audit report "No known
# vulnerabilities" while auditing nothing, so that case is detected first and reported as SKIPPED.
set -euo pipefail
cd "$(dirname "$0")/.."
AUDIT_VENV=${AUDIT_VENV:-/tmp/pip-audit-venv}

# jinja2 2.4.1 has published advisories: an index that shows none for it has no advisory data.
if ! reason=$(python3 - <<'PY'
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen("https://pypi.org/pypi/jinja2/2.4.1/json", timeout=15) as response:
        has_advisories = bool(json.load(response).get("vulnerabilities"))
except urllib.error.HTTPError as error:
    print(f"the package index has no JSON API with advisories (HTTP {error.code})")
    sys.exit(1)
except OSError as error:
    print(f"the package index cannot be reached ({error})")
    sys.exit(1)
if not has_advisories:
    print("the package index publishes no advisory data")
    sys.exit(1)
PY
); then
  echo "SKIPPED the dependency audit: $reason" >&2
  exit 0
fi

python3 -m venv "$AUDIT_VENV"
"$AUDIT_VENV/bin/pip" install -q --disable-pip-version-check pip-audit==2.10.1
frozen=$(mktemp)
trap 'rm -f "$frozen"' EXIT
# Local version labels (torch's "+cpu") are not on PyPI; the release they build is what advisories name.
{
  .venv/bin/python -m pip freeze --exclude-editable | sed -E 's/\+[A-Za-z0-9.]+$//'
  grep -E '^[A-Za-z0-9_.-]+==' requirements-gpu.txt
} > "$frozen"
"$AUDIT_VENV/bin/pip-audit" -r "$frozen" --no-deps --disable-pip --strict --progress-spinner off
