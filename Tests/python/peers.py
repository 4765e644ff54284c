"""What the tests' Python peers share: a Pusher client's connect, signatures and subscribe against a Patchbay on
127.0.0.1 with the test app (pbkey123 / pbsecret456), and a plain JSON answer for webhook receivers.
The Swift tests put this directory on PYTHONPATH for their inline scripts."""
import hashlib, hmac, json
import websockets

KEY, SECRET = "pbkey123", "pbsecret456"


def sign(text):
    """`key:hex(HMAC-SHA256(secret, text))`, the channel-auth form (pusher-channels.md §6)."""
    return KEY + ":" + hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()


async def connect(port, **options):
    """Opens /app/{key} and returns (socket, socket_id) once connection_established arrived."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/app/{KEY}?protocol=7", **options)
    return ws, json.loads(json.loads(await ws.recv())["data"])["socket_id"]


async def subscribe(ws, socket_id, channel, user=None, **extra):
    """Sends pusher:subscribe, signed for private- channels, with channel_data for a presence `user`; `extra` adds
    fields (patchbay_after). Does not wait for the answer."""
    data = {"channel": channel, **extra}
    if user is not None:
        channel_data = json.dumps({"user_id": user})
        data.update(auth=sign(f"{socket_id}:{channel}:{channel_data}"), channel_data=channel_data)
    elif channel.startswith("private-"):
        data["auth"] = sign(f"{socket_id}:{channel}")
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))


async def until(ws, *events):
    """The next message whose event is one of `events`."""
    while True:
        m = json.loads(await ws.recv())
        if m.get("event") in events:
            return m


def answer(handler, status):
    """Ends a BaseHTTPRequestHandler's request with `status` and the body {}."""
    handler.send_response(status)
    handler.send_header("content-length", "2")
    handler.end_headers()
    handler.wfile.write(b"{}")
