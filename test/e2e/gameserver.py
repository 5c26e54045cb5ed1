"""A GameLift game server's whole life with boto3 as the game backend. Usage:
gameserver.py ENDPOINT_URL FLEET_ID GAME_PORT. The example game server (test/gameserver, the official
GameLift Server SDK v5, unmodified) runs on a registered compute of FLEET_ID, taking players on GAME_PORT
of 127.0.0.1: CreateGameSession places a game session on its process, the game activates it, a player
reserved with CreatePlayerSession connects and is accepted (ACTIVE), leaves (COMPLETED), and
TerminateGameSession (TRIGGER_ON_PROCESS_TERMINATE) ends the game through the SDK's TerminateProcess."""
import socket
import sys
import time

import boto3

url, fleet, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
gl = boto3.session.Session().client("gamelift", endpoint_url=url)
failures = 0


def check(name, want, got):
    global failures
    if want == got:
        print(f"ok   game server: {name}")
    else:
        failures += 1
        print(f"FAIL game server: {name}: want {want!r}, got {got!r}")


def wait(fetch, want, seconds=30):
    got = None
    for _ in range(seconds * 5):
        got = fetch()
        if got == want:
            break
        time.sleep(0.2)
    return got


def game_session(gsid):
    return gl.describe_game_sessions(GameSessionId=gsid)["GameSessions"][0]


def player_status(psid):
    return gl.describe_player_sessions(PlayerSessionId=psid)["PlayerSessions"][0]["Status"]


gs = gl.create_game_session(FleetId=fleet, MaximumPlayerSessionCount=4, Name="e2e",
                            GameProperties=[{"Key": "map", "Value": "dust"}])["GameSession"]
gsid = gs["GameSessionId"]
check("create-game-session is ACTIVATING", "ACTIVATING", gs["Status"])
check("the game activates it", "ACTIVE", wait(lambda: game_session(gsid)["Status"], "ACTIVE"))
gs = game_session(gsid)
check("at the compute's address", "127.0.0.1", gs.get("IpAddress"))
check("at the port the process reported", port, gs.get("Port"))

ps = gl.create_player_session(GameSessionId=gsid, PlayerId="alice", PlayerData="red team")["PlayerSession"]
psid = ps["PlayerSessionId"]
check("create-player-session is RESERVED", "RESERVED", ps["Status"])
player = socket.create_connection(("127.0.0.1", port))
player.sendall((psid + "\n").encode())
answer = player.makefile().readline().strip()
check("the game accepts the player (AcceptPlayerSession)", "OK", answer)
check("the player session is ACTIVE", "ACTIVE", player_status(psid))
player.close()
check("the player leaves (RemovePlayerSession): COMPLETED", "COMPLETED", wait(lambda: player_status(psid), "COMPLETED"))

full = gl.create_game_session  # a second game session: the fleet's only process is busy
try:
    full(FleetId=fleet, MaximumPlayerSessionCount=4)
    code = "none"
except gl.exceptions.FleetCapacityExceededException:
    code = "FleetCapacityExceededException"
check("no idle process: FleetCapacityExceededException", "FleetCapacityExceededException", code)

gl.terminate_game_session(GameSessionId=gsid, TerminationMode="TRIGGER_ON_PROCESS_TERMINATE")
check("TerminateGameSession: TERMINATED when the process ends", "TERMINATED", wait(lambda: game_session(gsid)["Status"], "TERMINATED"))
check("with GameLift's status reason", "TRIGGERED_ON_PROCESS_TERMINATE", game_session(gsid).get("StatusReason"))
sys.exit(1 if failures else 0)
