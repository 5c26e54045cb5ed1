"""A full player-session lifecycle through the GameLift endpoint with boto3. Usage:
lifecycle.py ENDPOINT_URL GAME_SESSION_ID PROTOCOL, where PROTOCOL (json or cbor) is the wire protocol this
boto3 is expected to speak (Debian's boto3: json; the image's boto3 with AWS_DATA_PATH from cbor_model.py:
cbor). Every SDK request is recorded and checked to have used it."""
import json
import sys
import time

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

url, gsid, protocol = sys.argv[1], sys.argv[2], sys.argv[3]
session = boto3.session.Session()
gl = session.client("gamelift", endpoint_url=url)
failures = 0
spoken = []


def record(request, **kwargs):
    cbor = "/service/GameLift/operation/" in request.url
    json_ = "X-Amz-Target" in request.headers
    spoken.append("cbor" if cbor and not json_ else "json" if json_ and not cbor else "other")


gl.meta.events.register("before-send.gamelift", record)


def check(name, want, got):
    global failures
    if want == got:
        print(f"ok   boto3 ({protocol}): {name}")
    else:
        failures += 1
        print(f"FAIL boto3 ({protocol}): {name}: want {want!r}, got {got!r}")


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


def game_server(action, body):
    """A game server's call without an SDK operation for it: a raw signed AWS JSON 1.1 request."""
    req = AWSRequest(method="POST", url=url + "/", data=json.dumps(body),
                     headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "GameLift." + action})
    SigV4Auth(session.get_credentials(), "gamelift", session.region_name or "us-east-1").add_auth(req)
    import urllib.request
    r = urllib.request.Request(url + "/", data=req.body, headers=dict(req.headers), method="POST")
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def player(name):
    """Player ids of this run (the runs share the cluster: describing by player must find this run's)."""
    return name if protocol == "json" else name + "-" + protocol


print(f"# boto3 {boto3.__version__}, botocore {botocore.__version__}")
alice = gl.create_player_session(GameSessionId=gsid, PlayerId=player("alice"), PlayerData="red")["PlayerSession"]
check("create_player_session", ("RESERVED", "red"), (alice["Status"], alice["PlayerData"]))
status, body = game_server("AcceptPlayerSession", {"GameSessionId": gsid, "PlayerSessionId": alice["PlayerSessionId"]})
check("the game server accepts alice", (200, "ACTIVE"), (status, body.get("PlayerSession", {}).get("Status")))
bob = gl.create_player_sessions(GameSessionId=gsid, PlayerIds=[player("bob")], PlayerDataMap={player("bob"): "blue"})["PlayerSessions"][0]
check("create_player_sessions", ("RESERVED", "blue"), (bob["Status"], bob["PlayerData"]))
check("a third player is refused", "GameSessionFullException",
      error_code(lambda: gl.create_player_session(GameSessionId=gsid, PlayerId=player("carol"))))
alice = gl.describe_player_sessions(PlayerId=player("alice"))["PlayerSessions"][0]
check("describe by player", player("alice"), alice["PlayerId"])
check("timestamps are datetimes", True, alice["CreationTime"].year >= 2026)
page = gl.describe_player_sessions(GameSessionId=gsid, PlayerSessionStatusFilter="ACTIVE")["PlayerSessions"]
check("status filter", [player("alice")], [p["PlayerId"] for p in page])
first = gl.describe_player_sessions(GameSessionId=gsid, Limit=1)
second = gl.describe_player_sessions(GameSessionId=gsid, Limit=1, NextToken=first["NextToken"])
check("paging", 2, len({p["PlayerSessionId"] for p in first["PlayerSessions"] + second["PlayerSessions"]}))

time.sleep(6)  # bob is never accepted: the manager runs with --player-session-timeout=5s
bob = gl.describe_player_sessions(PlayerSessionId=bob["PlayerSessionId"])["PlayerSessions"][0]
check("bob timed out", "TIMEDOUT", bob["Status"])
status, body = game_server("RemovePlayerSession", {"PlayerSessionId": alice["PlayerSessionId"]})
check("the game server removes alice", (200, "COMPLETED"), (status, body.get("PlayerSession", {}).get("Status")))
for _ in range(50):  # the seat ledger follows within a batch window
    count = gl.describe_game_sessions(GameSessionId=gsid)["GameSessions"][0]["CurrentPlayerSessionCount"]
    if count == 0:
        break
    time.sleep(0.1)
check("the game session is empty again", 0, count)
gs = gl.update_game_session(GameSessionId=gsid, PlayerSessionCreationPolicy="DENY_ALL")["GameSession"]
check("update_game_session", "DENY_ALL", gs["PlayerSessionCreationPolicy"])
for _ in range(50):  # the search index follows the manager's cache
    found = gl.search_game_sessions(FleetId="fleet-arena", FilterExpression=f"gameSessionId = '{gsid}' AND hasAvailablePlayerSessions = false",
                                    SortExpression="creationTimeMillis DESC", Limit=5)["GameSessions"]
    if found:
        break
    time.sleep(0.1)
check("search_game_sessions: closed to players", [gsid], [g["GameSessionId"] for g in found])
check("search_game_sessions: a bad filter says where", "InvalidRequestException",
      error_code(lambda: gl.search_game_sessions(FleetId="fleet-arena", FilterExpression="playerSessionCount <")))
details = gl.describe_game_session_details(GameSessionId=gsid)["GameSessionDetails"]
check("describe_game_session_details", [(gsid, "NoProtection")], [(d["GameSession"]["GameSessionId"], d["ProtectionPolicy"]) for d in details])
check("an unknown game session", "NotFoundException",
      error_code(lambda: gl.create_player_session(GameSessionId=gsid + "0", PlayerId=player("dave"))))
queue = gl.create_game_session_queue(Name=f"queue-{protocol}", Destinations=[{"DestinationArn": "fleet-boto3"}], TimeoutInSeconds=300)
check("create_game_session_queue", 300, queue["GameSessionQueue"]["TimeoutInSeconds"])
started = gl.start_game_session_placement(PlacementId=f"boto3-{protocol}", GameSessionQueueName=f"queue-{protocol}", MaximumPlayerSessionCount=2,
                                          DesiredPlayerSessions=[{"PlayerId": player("erin")}])["GameSessionPlacement"]
check("start_game_session_placement", "PENDING", started["Status"])
for _ in range(50):  # the placement reaches the manager's cache
    try:
        stopped = gl.stop_game_session_placement(PlacementId=f"boto3-{protocol}")["GameSessionPlacement"]
        break
    except gl.exceptions.NotFoundException:
        time.sleep(0.1)
check("stop_game_session_placement", "CANCELLED", stopped["Status"])
check("describe_game_session_placement", "CANCELLED", gl.describe_game_session_placement(PlacementId=f"boto3-{protocol}")["GameSessionPlacement"]["Status"])
created = gl.create_game_session(FleetId="fleet-arena", MaximumPlayerSessionCount=4, Name="from boto3")["GameSession"]
check("create_game_session", ("ACTIVATING", "from boto3"), (created["Status"], created["Name"]))
check(f"every SDK request spoke {protocol} ({len(spoken)} requests)", {protocol}, set(spoken))
sys.exit(1 if failures else 0)
