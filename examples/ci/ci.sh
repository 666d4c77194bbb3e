#!/bin/sh
# A CI job in plain shell: start the mock QRM, point a webhook at your receiver,
# upload a report, and fail the build unless QRM's message was delivered.
set -eu

PORT="${MOCK_QRM_PORT:-8765}"
RECEIVER_URL="${RECEIVER_URL:-http://127.0.0.1:8080/webhooks/qrm}"  # your receiver
export MOCK_QRM_SERVER="http://127.0.0.1:$PORT"

# Time scale 60: a retry comes 1 s after a failure instead of 60 s.
mock-qrm serve --port "$PORT" --db "$(mktemp -d)/qrm.sqlite3" --time-scale 60 &
MOCK_PID=$!
trap 'kill "$MOCK_PID"' EXIT

tries=0
until mock-qrm clock >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { echo "mock-qrm did not start" >&2; exit 1; }
    sleep 0.1
done

mock-qrm webhooks create --name ci --url "$RECEIVER_URL" --event report.created
mock-qrm upload-report
mock-qrm wait --status delivered --event report.created --timeout "${WAIT_TIMEOUT:-30}"
