# Pusher features beyond subscribe/publish, against a running Patchbay, with the `pusher` library (3.3.4) as the
# reference signer and raw `websockets` clients: protocol-version refusals, the connection quota, user sign-in and
# `#server-to-user-` events, cache channels, encrypted channels' shared secret, /pusher/user-auth, and dashboard tokens.
# Usage: pusher_extras.py host port app_id key secret api_key master_key_b64 max_connections
# Prints one JSON object with what it saw.
import asyncio, json, sys, urllib.error, urllib.parse, urllib.request
import pusher
from pusher.http import Request
import websockets

host, port, app_id, key, secret, api_key, master_key, max_conn = sys.argv[1:9]
port, max_conn = int(port), int(max_conn)
base = f"ws://{host}:{port}/app/{key}"
api = pusher.Pusher(app_id=app_id, key=key, secret=secret, host=host, port=port, ssl=False, encryption_master_key_base64=master_key)
out = {}


def post(path, body, bearer, content_type="application/x-www-form-urlencoded"):
    req = urllib.request.Request(f"http://{host}:{port}{path}", data=body.encode(), method="POST",
                                 headers={"Content-Type": content_type, "Authorization": "Bearer " + bearer})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def connect(query="?protocol=7&client=js&version=8.4.0"):
    ws = await websockets.connect(base + query)
    established = json.loads(await ws.recv())
    return ws, json.loads(established["data"])["socket_id"]


async def refused(query):
    """The first frame and the close code of a connection Patchbay refuses."""
    async with websockets.connect(base + query) as ws:
        first = json.loads(await ws.recv())
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.exceptions.ConnectionClosed as e:
            return [first.get("event"), first.get("data", {}).get("code"), e.rcvd.code if e.rcvd else None]
        return [first.get("event"), first.get("data", {}).get("code"), "open"]


async def next_event(ws, name, seconds=5):
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), seconds))
        if m.get("event") == name:
            return m


async def main():
    # Protocol versions: none, not a number, out of range; 5 and 6 accepted.
    out["no_protocol"] = await refused("")
    out["bad_version"] = await refused("?protocol=seven")
    out["unsupported"] = await refused("?protocol=8")
    for v in (5, 6):
        ws, _ = await connect(f"?protocol={v}")
        out[f"protocol_{v}"] = "established"
        await ws.close()

    # A message over the 16 KiB limit: pusher:error 4300, then close 1009.
    ws, _ = await connect()
    await ws.send(json.dumps({"event": "client-big", "channel": "private-x", "data": "z" * 20000}))
    try:
        err = await next_event(ws, "pusher:error")
        await asyncio.wait_for(ws.recv(), 5)
    except websockets.exceptions.ConnectionClosed as e:
        out["too_large"] = [err["data"]["code"], e.rcvd.code if e.rcvd else None]

    # User sign-in: the pusher library's signature is accepted; events to #server-to-user-{id} reach the socket.
    ws, sid = await connect()
    signin = api.authenticate_user(sid, {"id": "agent-7", "user_info": {"name": "Ana"}})
    await ws.send(json.dumps({"event": "pusher:signin", "data": signin}))
    ok = await next_event(ws, "pusher:signin_success")
    out["signin"] = ok["data"]["user_data"] == signin["user_data"]
    api.send_to_user("agent-7", "notice", {"text": "hola"})
    m = await next_event(ws, "notice")
    out["to_user"] = [m.get("channel"), json.loads(m["data"])]
    # The same user's second socket; the library's terminate_user_connections (pusher 3.3.4 posts it without
    # /apps/{id}, see pusher-channels.md §12; Patchbay serves that path too) closes both.
    ws2, sid2 = await connect()
    await ws2.send(json.dumps({"event": "pusher:signin", "data": api.authenticate_user(sid2, {"id": "agent-7"})}))
    await next_event(ws2, "pusher:signin_success")
    api.terminate_user_connections("agent-7")

    async def closed_with(w):
        try:
            err = await next_event(w, "pusher:error")
            await asyncio.wait_for(w.recv(), 5)
        except websockets.exceptions.ConnectionClosed as e:
            return [err["data"]["code"], e.rcvd.code if e.rcvd else None]
    out["terminated"] = [await closed_with(ws), await closed_with(ws2)]
    # The documented path, /apps/{id}/users/{user}/terminate_connections, signed the library's way.
    ws, sid = await connect()
    await ws.send(json.dumps({"event": "pusher:signin", "data": api.authenticate_user(sid, {"id": "agent-8"})}))
    await next_event(ws, "pusher:signin_success")
    client = api._pusher_client
    client.http.send_request(Request(client, "POST", f"/apps/{app_id}/users/agent-8/terminate_connections", {}))
    out["terminated_apps_path"] = await closed_with(ws)
    # A bad sign-in signature: pusher:error 4009, close 4009.
    ws, sid = await connect()
    await ws.send(json.dumps({"event": "pusher:signin", "data": {"auth": key + ":" + "0" * 64, "user_data": "{\"id\":\"x\"}"}}))
    try:
        err = await next_event(ws, "pusher:error")
        await asyncio.wait_for(ws.recv(), 5)
    except websockets.exceptions.ConnectionClosed as e:
        out["bad_signin"] = [err["data"]["code"], e.rcvd.code if e.rcvd else None]

    # Cache channels: the last event comes right after subscription_succeeded; an empty one says cache_miss.
    api.trigger(["cache-prices"], "price", {"eur": 1})
    api.trigger(["cache-prices"], "price", {"eur": 2})
    ws, sid = await connect()
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "cache-prices"}}))
    await next_event(ws, "pusher_internal:subscription_succeeded")
    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
    out["cache_hit"] = [m.get("event"), json.loads(m["data"]) if m.get("event") == "price" else None]
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "cache-empty"}}))
    await next_event(ws, "pusher_internal:subscription_succeeded")
    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
    out["cache_miss"] = [m.get("event"), m.get("channel")]
    await ws.close()

    # /pusher/auth for an encrypted channel and /pusher/user-auth answer what the pusher library computes.
    status, body = post("/pusher/auth", "socket_id=1234.5678&channel_name=private-encrypted-ops", api_key)
    expected = api.authenticate(channel="private-encrypted-ops", socket_id="1234.5678")
    expected["shared_secret"] = expected["shared_secret"].decode()  # the library returns bytes here (3.3.4)
    out["encrypted_auth"] = [status, body == expected]
    user_data = json.dumps({"id": "agent-9"})
    status, body = post("/pusher/user-auth", "socket_id=1234.5678&user_data=" + urllib.parse.quote(user_data), api_key)
    out["user_auth"] = [status, body == api.authenticate_user("1234.5678", {"id": "agent-9"})]
    # A multi-channel publish that includes an encrypted channel is refused by Patchbay (sent through the library's
    # signer directly: its trigger() may refuse such a call before sending it).
    try:
        client.http.send_request(Request(client, "POST", f"/apps/{app_id}/events",
                                         {"name": "x", "channels": ["private-encrypted-ops", "public-x"], "data": "{}"}))
        out["encrypted_multi"] = "accepted"
    except pusher.errors.PusherBadRequest:
        out["encrypted_multi"] = 400

    # Dashboard tokens: issued with the API key; the token's user fixes presence channel_data and sign-in user_data.
    status, issued = post("/api/v1/auth-tokens", json.dumps({"user_id": "agent-3", "user_info": {"name": "Eva"}, "ttl_seconds": 600}),
                          api_key, "application/json")
    token = issued.get("token", "")
    out["token_issued"] = [status, token.startswith("pbt_")]
    ws, sid = await connect()
    status, body = post("/pusher/auth", f"socket_id={sid}&channel_name=presence-desk&channel_data=" +
                        urllib.parse.quote(json.dumps({"user_id": "someone-else"})), token)
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-desk", "auth": body.get("auth"),
                                                                    "channel_data": body.get("channel_data")}}))
    m = await next_event(ws, "pusher_internal:subscription_succeeded")
    out["token_presence"] = [status, json.loads(body.get("channel_data", "{}")), json.loads(m["data"])["presence"]["ids"]]
    status, body = post("/pusher/user-auth", f"socket_id={sid}", token)
    await ws.send(json.dumps({"event": "pusher:signin", "data": body}))
    ok = await next_event(ws, "pusher:signin_success")
    out["token_signin"] = [status, json.loads(ok["data"]["user_data"])]
    await ws.close()
    out["token_other_app"] = post("/pusher/auth", "socket_id=1.2&channel_name=private-x&app_key=other", token)[0]
    out["token_tampered"] = post("/pusher/auth", "socket_id=1.2&channel_name=private-x", token[:-2] + "AA")[0]

    # The connection quota: max_conn sockets, then 4004; a slot frees when one closes.
    held = [(await connect())[0] for _ in range(max_conn)]
    out["over_quota"] = await refused("?protocol=7")
    await held[0].close()
    await asyncio.sleep(0.3)
    ws, _ = await connect()
    out["after_release"] = "established"
    for w in held[1:] + [ws]:
        await w.close()


asyncio.run(main())
print(json.dumps(out), flush=True)
