#!/usr/bin/env python3
"""Conformance run of Patchbay's Pusher server against independent PyPI clients.

pysher 1.0.8 (WebSocket client, announces protocol 6) subscribes to public, private and presence channels; the
`pusher` 3.3.4 HTTP client triggers events and batches and queries channels; both are Pusher's own or community
libraries, so Patchbay is checked against what dashboards and backends really run. Prints one JSON object of
observations; the Swift test asserts on it. Usage: pusher_peers.py HOST PORT APP_ID KEY SECRET API_KEY
"""
import asyncio, json, sys, threading, time, urllib.request, urllib.error

import pusher
import pysher
import websockets

host, port, app_id, key, secret, api_key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
out = {}
received = {}          # client -> list of (event, channel, data)
lock = threading.Lock()


def record(client, event, channel):
    def cb(data, *args):
        with lock:
            received.setdefault(client, []).append([event, channel, data])
    return cb


def connect(name, user):
    client = pysher.Pusher(key, secure=False, custom_host=host, port=port, secret=secret, user_data=user, log_level=40)
    ready = threading.Event()
    channels = {}

    def on_connect(data):
        for ch in ["public-feed", "private-tenant-acme", "presence-room", "private-call-call_1"]:
            c = client.subscribe(ch)
            channels[ch] = c
            for ev in ["hello", "batch-1", "batch-2", "client-typing", "call.started",
                       "pusher_internal:subscription_succeeded", "pusher_internal:member_added",
                       "pusher_internal:member_removed"]:
                c.bind(ev, record(name, ev, ch))
        ready.set()

    client.connection.bind("pusher:connection_established", on_connect)
    client.connect()
    if not ready.wait(5):
        raise SystemExit(f"{name}: no connection_established")
    return client, channels


def wait_for(pred, seconds=5.0):
    end = time.time() + seconds
    while time.time() < end:
        with lock:
            if pred():
                return True
        time.sleep(0.02)
    return False


a, a_channels = connect("a", {"user_id": "agent-7", "user_info": {"name": "Ana"}})
wait_for(lambda: sum(1 for e in received.get("a", []) if e[0] == "pusher_internal:subscription_succeeded") == 4)
b, b_channels = connect("b", {"user_id": "agent-9", "user_info": {"name": "Leo"}})
wait_for(lambda: sum(1 for e in received.get("b", []) if e[0] == "pusher_internal:subscription_succeeded") == 4)
out["a_subscribed"] = sorted(e[1] for e in received.get("a", []) if e[0] == "pusher_internal:subscription_succeeded")
wait_for(lambda: any(e[0] == "pusher_internal:member_added" for e in received.get("a", [])))
out["a_member_added"] = [json.loads(e[2]) for e in received.get("a", []) if e[0] == "pusher_internal:member_added"]
presence_b = [json.loads(e[2]) for e in received.get("b", []) if e[0] == "pusher_internal:subscription_succeeded" and e[1] == "presence-room"]
out["b_presence"] = presence_b[0]["presence"] if presence_b else None

api = pusher.Pusher(app_id=app_id, key=key, secret=secret, host=host, port=port, ssl=False)
api.trigger(["public-feed", "private-tenant-acme"], "hello", {"n": 1})
api.trigger_batch([{"channel": "public-feed", "name": "batch-1", "data": {"i": 1}},
                   {"channel": "presence-room", "name": "batch-2", "data": {"i": 2}}])
wait_for(lambda: len([e for e in received.get("a", []) if e[0] in ("hello", "batch-1", "batch-2")]) >= 4)
out["a_events"] = sorted([e[0], e[1], json.loads(e[2])] for e in received.get("a", []) if e[0] in ("hello", "batch-1", "batch-2"))
out["channels_info"] = api.channels_info(prefix_filter="presence-", attributes=["user_count"])
out["channel_info"] = api.channel_info("presence-room", ["user_count", "subscription_count"])
out["users_info"] = api.users_info("presence-room")

# Client event: b -> a on the private channel; never echoed to b.
b_channels["private-tenant-acme"].trigger("client-typing", {"who": "agent-9"})
wait_for(lambda: any(e[0] == "client-typing" for e in received.get("a", [])))
time.sleep(0.3)
out["a_client_events"] = [e[2] if isinstance(e[2], dict) else json.loads(e[2]) for e in received.get("a", []) if e[0] == "client-typing"]
out["b_client_events"] = [e for e in received.get("b", []) if e[0] == "client-typing"]

# Patchbay's own events (the Swift side publishes call.started for call_1 every 100 ms: on private-tenant-default,
# private-call-call_1 and private-conversation-acme).
wait_for(lambda: any(e[0] == "call.started" for e in received.get("a", [])))
own = [json.loads(e[2]) for e in received.get("a", []) if e[0] == "call.started"]
out["own_event"] = own[0] if own else None

# Refusals: a wrong secret, a stale timestamp, a wrong app key.
try:
    pusher.Pusher(app_id=app_id, key=key, secret="wrong-secret", host=host, port=port, ssl=False).trigger(["public-feed"], "x", {})
    out["bad_secret"] = "accepted"
except pusher.errors.PusherBadAuth:
    out["bad_secret"] = "PusherBadAuth"
real_time = time.time
try:
    time.time = lambda: real_time() - 700
    api.trigger(["public-feed"], "x", {})
    out["stale_timestamp"] = "accepted"
except pusher.errors.PusherBadAuth:
    out["stale_timestamp"] = "PusherBadAuth"
finally:
    time.time = real_time


async def wrong_key():
    async with websockets.connect(f"ws://{host}:{port}/app/no-such-key?protocol=7&client=js&version=8.4.0") as ws:
        first = json.loads(await ws.recv())
        try:
            await ws.recv()
        except websockets.exceptions.ConnectionClosed as e:
            return first, e.rcvd.code if e.rcvd else None
        return first, None
first, code = asyncio.run(wrong_key())
out["wrong_key"] = {"event": first.get("event"), "code": first.get("data", {}).get("code"), "close": code}

# /pusher/auth against the pusher library's own signer.
def post_auth(bearer, body):
    req = urllib.request.Request(f"http://{host}:{port}/pusher/auth", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer " + bearer})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
status, body = post_auth(api_key, "socket_id=1234.5678&channel_name=private-tenant-acme")
out["auth"] = {"status": status, "matches": body == api.authenticate(channel="private-tenant-acme", socket_id="1234.5678")}
status, _ = post_auth("not-a-key-0000000000", "socket_id=1234.5678&channel_name=private-tenant-acme")
out["auth_refused"] = status

# b leaves the presence channel: a sees member_removed. (pysher's disconnect() can hang joining its own thread, so
# the clients are left to die with the process: their threads are daemons.)
b.unsubscribe("presence-room")
wait_for(lambda: any(e[0] == "pusher_internal:member_removed" for e in received.get("a", [])))
out["a_member_removed"] = [json.loads(e[2]) for e in received.get("a", []) if e[0] == "pusher_internal:member_removed"]
print(json.dumps(out), flush=True)
import os
os._exit(0)
