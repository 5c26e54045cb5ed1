#!/usr/bin/env bash
# End-to-end: the GameLift-compatible endpoint driven by real AWS clients through a full session lifecycle,
# in both wire protocols: Debian's boto3 and aws CLI (AWS JSON 1.1, as they ship), and the image's boto3 and
# aws CLI made to speak Smithy RPC v2 CBOR with a CBOR-only copy of their model (test/e2e/cbor_model.py;
# as shipped, they send AWS JSON 1.1 too). Each run checks the protocol actually spoken. Then a GameLift game
# server: the example game server (test/gameserver, the official Server SDK v5) on a compute registered with
# the aws CLI, and boto3 as its backend (test/e2e/gameserver.py). The manager runs on a local control plane,
# as `make run` does.
set -euo pipefail
cd "$(dirname "$0")/../.."
hack/e2e-deps.sh
go build -o bin/manager-local ./cmd/manager-local
go build -o bin/gameserver ./test/gameserver
state=$(mktemp -d)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
sdk_port=$(free_port)
KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) bin/manager-local --local-control-plane="$state" --leader-election-namespace=default \
  --metrics-bind-address=0 --health-probe-bind-address=0 --query-port=0 --gamelift-bind-address="127.0.0.1:$port" \
  --gamelift-sdk-bind-address="127.0.0.1:$sdk_port" --player-session-timeout=5s >"$state/manager.log" 2>&1 &
pid=$!
game_pid=
cleanup() {
  [[ -n "$game_pid" ]] && { kill "$game_pid" 2>/dev/null || true; }
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$state"
}
trap cleanup EXIT

for _ in $(seq 1 120); do grep -qs '^  export AWS_ACCESS_KEY_ID' "$state/manager.log" && break; sleep 0.5; done
grep -q '^  export AWS_ACCESS_KEY_ID' "$state/manager.log" || { cat "$state/manager.log"; echo "e2e: the manager did not come up" >&2; exit 1; }
eval "$(grep '^  export AWS_ACCESS_KEY_ID' "$state/manager.log")"
export KUBECONFIG="$state/kubeconfig"
url="http://127.0.0.1:$port"

passed=0
failed=0
check() { # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then passed=$((passed + 1)); echo "ok   $1"; else failed=$((failed + 1)); echo "FAIL $1: want '$2', got '$3'"; fi
}

kubectl apply -f config/samples/gamesession.yaml >/dev/null
sed 's/name: arena-1/name: arena-2/' config/samples/gamesession.yaml | kubectl apply -f - >/dev/null
for _ in $(seq 1 100); do
  gsid=$(kubectl get gsess arena-1 -o jsonpath='{.status.gameSessionId}' 2>/dev/null || true)
  gsid2=$(kubectl get gsess arena-2 -o jsonpath='{.status.gameSessionId}' 2>/dev/null || true)
  status=$(kubectl get gsess arena-1 arena-2 -o jsonpath='{.items[*].status.status}' 2>/dev/null || true)
  [[ -n "$gsid" && -n "$gsid2" && "$status" == "ACTIVE ACTIVE" ]] && break
  sleep 0.2
done
# The access key and the game session reach the manager's cache.
for _ in $(seq 1 100); do
  /usr/bin/aws gamelift describe-game-sessions --endpoint-url "$url" --game-session-id "$gsid" >/dev/null 2>&1 && break
  sleep 0.2
done

# Debian's boto3 (AWS JSON 1.1): the rest of the lifecycle, and the game server's calls.
lifecycle() { # lifecycle PYTHON GAME_SESSION_ID PROTOCOL
  local out
  out=$("$1" test/e2e/lifecycle.py "$url" "$2" "$3" 2>&1) || true
  echo "$out"
  passed=$((passed + $(grep -c '^ok ' <<<"$out" || true)))
  failed=$((failed + $(grep -c '^FAIL' <<<"$out" || true)))
  [[ $(grep -c '^ok \|^FAIL' <<<"$out" || true) -gt 10 ]] || { failed=$((failed + 1)); echo "FAIL boto3 ($3): the run stopped early"; }
}
lifecycle /usr/bin/python3 "$gsid" json

# The image's boto3, made to speak Smithy RPC v2 CBOR, through the same lifecycle on another game session.
image_python=$(command -v python3)
[[ "$image_python" != /usr/bin/python3 ]] && "$image_python" -c 'import boto3' 2>/dev/null || {
  echo "e2e: the image's python3 with boto3 is needed for the CBOR run" >&2; exit 1; }
cbor_model="$state/cbor-model"
"$image_python" test/e2e/cbor_model.py "$cbor_model"
AWS_DATA_PATH="$cbor_model" lifecycle "$image_python" "$gsid2" cbor


# Debian's aws CLI (AWS JSON 1.1).
cli=/usr/bin/aws
check "aws CLI: describe-player-sessions by game session" 2 "$($cli gamelift describe-player-sessions --endpoint-url "$url" --game-session-id "$gsid" --query 'length(PlayerSessions)' --output text)"
check "aws CLI: describe-game-sessions" DENY_ALL "$($cli gamelift describe-game-sessions --endpoint-url "$url" --game-session-id "$gsid" --query 'GameSessions[0].PlayerSessionCreationPolicy' --output text)"
check "aws CLI: create-game-session" ACTIVATING "$($cli gamelift create-game-session --endpoint-url "$url" --fleet-id fleet-arena --maximum-player-session-count 3 --query GameSession.Status --output text)"
err=$($cli gamelift create-player-session --endpoint-url "$url" --game-session-id "$gsid" --player-id erin 2>&1 || true)
check "aws CLI: DENY_ALL refuses with GameSessionFullException" 1 "$(grep -c GameSessionFullException <<<"$err")"
check "aws CLI: search-game-sessions with a filter and a sort" "Arena one	Arena one" "$($cli gamelift search-game-sessions --endpoint-url "$url" \
  --fleet-id fleet-arena --filter-expression "gameSessionProperties.map = 'dust' AND hasAvailablePlayerSessions = false" \
  --sort-expression 'playerSessionCount DESC' --query 'GameSessions[].Name' --output text)"
err=$($cli gamelift search-game-sessions --endpoint-url "$url" --fleet-id fleet-arena --filter-expression 'playerSessionCount < 3 AND' 2>&1 || true)
check "aws CLI: a bad filter expression says where" 1 "$(grep -c 'InvalidRequestException.*at character 27' <<<"$err")"
err=$($cli gamelift describe-player-sessions --endpoint-url "$url" 2>&1 || true)
check "aws CLI: no key is InvalidRequestException" 1 "$(grep -c InvalidRequestException <<<"$err")"
err=$(AWS_SECRET_ACCESS_KEY=wrong $cli gamelift describe-player-sessions --endpoint-url "$url" --player-id alice 2>&1 || true)
check "aws CLI: a wrong secret is UnauthorizedException" 1 "$(grep -c UnauthorizedException <<<"$err")"

# Queues and placements: the sample's queue and placement (kubectl), and one started with the aws CLI; the
# game server's part (activating the game session) played with kubectl.
kubectl apply -f config/samples/gamesessionqueue.yaml >/dev/null
check "aws CLI: start-game-session-placement" PENDING "$($cli gamelift start-game-session-placement --endpoint-url "$url" --placement-id cli-1 \
  --game-session-queue-name arena-queue --maximum-player-session-count 2 --desired-player-sessions PlayerId=cy --query GameSessionPlacement.Status --output text)"
for _ in $(seq 1 100); do
  placed=$(kubectl get gsess -l game.playersessions.dev/placement -o jsonpath='{.items[*].metadata.name}')
  [[ $(wc -w <<<"$placed") == 2 ]] && break
  sleep 0.2
done
for gs in $placed; do
  kubectl patch gsess "$gs" --subresource=status --type=merge -p '{"status":{"status":"ACTIVE","ipAddress":"10.0.0.30","port":7000}}' >/dev/null
done
for _ in $(seq 1 100); do
  [[ $($cli gamelift describe-game-session-placement --endpoint-url "$url" --placement-id cli-1 --query GameSessionPlacement.Status --output text) == FULFILLED ]] && break
  sleep 0.2
done
check "aws CLI: describe-game-session-placement" "FULFILLED	10.0.0.30	1" "$($cli gamelift describe-game-session-placement --endpoint-url "$url" \
  --placement-id cli-1 --query 'GameSessionPlacement.[Status,IpAddress,length(PlacedPlayerSessions)]' --output text)"
for _ in $(seq 1 50); do [[ $(kubectl get gsp arena-match-1 -o jsonpath='{.status.status}') == FULFILLED ]] && break; sleep 0.2; done
check "kubectl: the sample placement is FULFILLED, its two players reserved" "FULFILLED 2" \
  "$(kubectl get gsp arena-match-1 -o jsonpath='{.status.status} {.status.placedPlayerSessions[*].playerId}' | awk '{print $1, NF-1}')"
err=$($cli gamelift stop-game-session-placement --endpoint-url "$url" --placement-id cli-1 2>&1 || true)
check "aws CLI: a FULFILLED placement cannot be stopped" 1 "$(grep -c InvalidRequestException <<<"$err")"

# The image's aws CLI, made to speak Smithy RPC v2 CBOR with the same model; --debug shows the request line.
image_aws=$(command -v aws)
[[ "$image_aws" != /usr/bin/aws ]] || { echo "e2e: the image's aws CLI is needed for the CBOR run" >&2; exit 1; }
cbor_cli() { AWS_DATA_PATH="$cbor_model" "$image_aws" --debug gamelift --endpoint-url "$url" "$@" 2>"$state/cli-debug"; }
check "aws CLI (RPC v2 CBOR): describe-player-sessions by player" COMPLETED "$(cbor_cli describe-player-sessions --player-id alice --query 'PlayerSessions[0].Status' --output text)"
check "aws CLI (RPC v2 CBOR): the request was CBOR" 1 "$(grep -c 'url=http://127.0.0.1:[0-9]*/service/GameLift/operation/DescribePlayerSessions' "$state/cli-debug" || true)"
check "aws CLI (RPC v2 CBOR): create-game-session" ACTIVATING "$(cbor_cli create-game-session --fleet-id fleet-arena --maximum-player-session-count 3 --query GameSession.Status --output text)"
check "aws CLI (RPC v2 CBOR): search-game-sessions" 2 "$(cbor_cli search-game-sessions --fleet-id fleet-arena --filter-expression 'hasAvailablePlayerSessions = false' --query 'length(GameSessions)' --output text)"
err=$(cbor_cli create-player-session --game-session-id "$gsid" --player-id erin --output text || true)
check "aws CLI (RPC v2 CBOR): DENY_ALL refuses with GameSessionFullException" yes "$(grep -q 'GameSessionFullException' <<<"$err$(cat "$state/cli-debug")" && echo yes)"

# A GameLift game server: the Anywhere path with the aws CLI, the example game server from its environment
# alone, boto3 (the image's: TerminateGameSession is newer than Debian's botocore) as its backend.
sdk_url=$("$image_aws" gamelift register-compute --endpoint-url "$url" --fleet-id fleet-sdk --compute-name compute-1 \
  --ip-address 127.0.0.1 --query Compute.GameLiftServiceSdkEndpoint --output text)
check "aws CLI: register-compute hands out the SDK's endpoint" "ws://127.0.0.1:$sdk_port" "$sdk_url"
token=$("$image_aws" gamelift get-compute-auth-token --endpoint-url "$url" --fleet-id fleet-sdk --compute-name compute-1 --query AuthToken --output text)
game_port=$(free_port)
while ((game_port > 60000)); do game_port=$(free_port); done # the SDK's ProcessReady takes ports 1-60000
mkdir -p "$state/game"
(cd "$state/game" && GAMELIFT_SDK_WEBSOCKET_URL="$sdk_url" GAMELIFT_SDK_AUTH_TOKEN="$token" GAMELIFT_SDK_FLEET_ID=fleet-sdk \
  GAMELIFT_SDK_HOST_ID=compute-1 GAMELIFT_SDK_PROCESS_ID=proc-1 exec "$OLDPWD/bin/gameserver" -port "$game_port" >"$state/game.log" 2>&1) &
game_pid=$!
for _ in $(seq 1 100); do
  [[ $(kubectl get computes -o jsonpath='{.items[0].status.processes[0].status}' 2>/dev/null) == ACTIVE ]] && break
  sleep 0.2
done
check "the game server's ProcessReady: its process ACTIVE on the Compute" ACTIVE "$(kubectl get computes -o jsonpath='{.items[0].status.processes[0].status}')"
out=$("$image_python" test/e2e/gameserver.py "$url" fleet-sdk "$game_port" 2>&1) || true
echo "$out"
passed=$((passed + $(grep -c '^ok ' <<<"$out" || true)))
failed=$((failed + $(grep -c '^FAIL' <<<"$out" || true)))
[[ $(grep -c '^ok \|^FAIL' <<<"$out" || true) -ge 11 ]] || { failed=$((failed + 1)); echo "FAIL game server: the run stopped early"; cat "$state/game.log"; }
placed=$(kubectl get gamesessions -o jsonpath='{.items[?(@.status.process.processId=="proc-1")].metadata.name}')
check "kubectl: the process's ProcessClaim names the game session placed on it" "proc-1 ${placed:-none}" \
  "$(kubectl get processclaims -o jsonpath='{.items[0].spec.processId} {.items[0].spec.gameSessionName}')"
for _ in $(seq 1 50); do kill -0 "$game_pid" 2>/dev/null || break; sleep 0.2; done
check "the game server exits after ProcessEnding" gone "$(kill -0 "$game_pid" 2>/dev/null && echo running || echo gone)"

echo "e2e: $passed passed, $failed failed"
[[ $failed == 0 ]]
