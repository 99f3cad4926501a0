#!/usr/bin/env bash
# Builds the CPU image and runs it the ways the README shows, checking what a user relies on:
# health, UID 1000, a generation, a share that survives a new container on the same volumes, a
# clean `docker stop`, no token in the logs, flags after the image name, and the image in front
# of a TGI container (our protocol stand-in, since a real TGI needs a GPU and the hub).
#   deploy/check_image.sh [docker build options...]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=starcoder-playground:check
RUN_ID=pgcheck-$$
PORT=${PORT:-17860}
SECRET=hf_PLANTEDimageSECRET42

cleanup() {
  docker rm -f "$RUN_ID-app" "$RUN_ID-app2" "$RUN_ID-tgi" "$RUN_ID-remote" >/dev/null 2>&1 || true
  docker volume rm "$RUN_ID-data" "$RUN_ID-hf" >/dev/null 2>&1 || true
  docker network rm "$RUN_ID-net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
ok() { echo "ok: $*"; }
check() {  # check "what" command...: a failed check stops the script
  local what=$1; shift
  if "$@"; then ok "$what"; else echo "FAILED: $what" >&2; exit 1; fi
}
# Read the logs whole first: `docker logs | grep -q` fails under pipefail when grep stops early.
in_logs() { local logs; logs=$(docker logs "$1" 2>&1); grep -qF -- "$2" <<<"$logs"; }
no_secret_in() { ! grep -qF -- "$SECRET" <<<"$1"; }
json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

wait_healthy() {  # the image's own HEALTHCHECK decides, polled every 2 s
  for _ in $(seq 1 120); do
    case "$(docker inspect "$1" --format '{{.State.Health.Status}}')" in
      healthy) return 0 ;;
      unhealthy) docker logs "$1"; return 1 ;;
    esac
    sleep 1
  done
  docker logs "$1"; echo "$1 never became healthy" >&2; return 1
}

build_log=$(mktemp)
docker build -t "$IMAGE" "$@" . >"$build_log" 2>&1 || { cat "$build_log"; echo "FAILED: docker build" >&2; exit 1; }
rm -f "$build_log"
ok "built $IMAGE ($(docker image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}'))"

volumes=(-v "$RUN_ID-hf:/home/user/.cache/huggingface" -v "$RUN_ID-data:/home/user/data")
docker run -d --name "$RUN_ID-app" --health-interval=2s -p "$PORT:7860" -e HF_TOKEN="$SECRET" \
  "${volumes[@]}" "$IMAGE" >/dev/null
check "healthy by the image's HEALTHCHECK" wait_healthy "$RUN_ID-app"
check "runs as UID 1000" test "$(docker exec "$RUN_ID-app" id -u)" = 1000

base=http://127.0.0.1:$PORT
generation=$(curl -sf -X POST "$base/api/generate" -H 'content-type: application/json' \
  -d '{"mode": "fill", "code": "def add(a, b):\n    <FILL_HERE>\n", "params": {"max_new_tokens": 16, "seed": 1}}')
id=$(echo "$generation" | json '["id"]')
share=$(curl -sf -X POST "$base/api/shares" -H 'content-type: application/json' -d "{\"generation_id\": \"$id\"}" | json '["id"]')
before=$(curl -sf "$base/api/shares/$share")
ok "fill generation $id shared as $share"
answers=$(for path in /api/health /api/models /api/params "/api/generations/$id" /config /gradio_api/config /; do curl -s "$base$path" || true; done)
check "the token is in no answer" no_secret_in "$answers$generation"

started=$(date +%s.%N)
docker stop "$RUN_ID-app" >/dev/null
ok "docker stop took $(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')") s"
check "shut down cleanly" in_logs "$RUN_ID-app" "Shut down cleanly"
check "the token is not in the logs" no_secret_in "$(docker logs "$RUN_ID-app" 2>&1)"

docker run -d --name "$RUN_ID-app2" --health-interval=2s -p "$PORT:7860" "${volumes[@]}" "$IMAGE" \
  --max-queue 4 --log-level debug >/dev/null
check "a new container on the same volumes is healthy" wait_healthy "$RUN_ID-app2"
check "the share reopens exactly" test "$(curl -sf "$base/api/shares/$share")" = "$before"
check "flags after the image name reach app.py" in_logs "$RUN_ID-app2" DEBUG
docker rm -f "$RUN_ID-app2" >/dev/null

docker network create "$RUN_ID-net" >/dev/null
docker run -d --name "$RUN_ID-tgi" --network "$RUN_ID-net" --network-alias tgi --entrypoint python3 "$IMAGE" \
  -m support.standins.tgi_standin --host 0.0.0.0 --port 80 --rate 50 >/dev/null
docker run -d --name "$RUN_ID-remote" --health-interval=2s --network "$RUN_ID-net" -p "$PORT:7860" \
  -e PLAYGROUND_BACKEND=tgi -e PLAYGROUND_ENDPOINT=http://tgi:80 -e PLAYGROUND_MODEL=starcoder "$IMAGE" >/dev/null
check "the playground in front of TGI is healthy" wait_healthy "$RUN_ID-remote"
last=$(curl -sfN -X POST "$base/api/generate" -H 'content-type: application/json' \
  -d '{"mode": "complete", "prompt": "def f():", "stream": true, "params": {"max_new_tokens": 8}}' | grep '^data: ' | tail -1)
check "streams from the TGI container" test "$(echo "${last#data: }" | json '["backend"]["kind"]')" = tgi
echo "image checks passed"
