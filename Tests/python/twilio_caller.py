#!/usr/bin/env python3
"""Independent Twilio Media Streams *caller* (the Twilio side of a bidirectional <Connect><Stream>).

Why: the Swift test suite has its own Twilio simulator; a peer written separately, in another language and
library (Python + `websockets`), keeps the gateway from only ever being tested against itself. Message shapes
follow /work/shared/protocols/twilio-media-streams.md sections 3-7 and 10 (string sequenceNumber/chunk/timestamp,
numeric sampleRate/channels, media.track "inbound", dtmf.track "inbound_track").

What it does: signs the upgrade with X-Twilio-Signature, sends connected + start, streams a 440 Hz mu-law sine in
20 ms frames paced on deadlines, reads everything the server sends concurrently (validating shapes, echoing marks
after a real-time playout model, honouring clear), then sends stop, closes with 1000 and writes a JSON summary.
Exit 0 when it ran to completion, 1 (message on stderr) when it could not connect.
"""
import argparse, asyncio, base64, hashlib, hmac, inspect, json, math, sys

import websockets

try:  # websockets >= 13: new asyncio implementation, header kwarg is additional_headers
    from websockets.asyncio.client import connect as ws_connect
except ImportError:  # older releases: legacy client, header kwarg is extra_headers
    ws_connect = websockets.connect

FRAME_BYTES, FRAME_S = 160, 0.020


def twilio_signature(auth_token: str, url: str) -> str:
    """base64(HMAC-SHA1(auth token, URL)); a WebSocket upgrade has no POST params to append (doc section 10)."""
    return base64.b64encode(hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()).decode()


def lin2ulaw(sample: int) -> int:
    """Standard G.711 mu-law encoder for one signed 16-bit sample (bias 0x84, clip 32635, bits inverted)."""
    sign = 0x80 if sample < 0 else 0
    mag = min(-sample if sign else sample, 32635) + 0x84
    exponent = max(0, min(7, mag.bit_length() - 8))
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def sine_frame(index: int) -> bytes:
    """Frame `index` (160 samples) of a continuous 440 Hz sine at amplitude 8000, mu-law encoded."""
    n0 = index * FRAME_BYTES
    return bytes(lin2ulaw(round(8000 * math.sin(2 * math.pi * 440 * (n0 + k) / 8000))) for k in range(FRAME_BYTES))


class Caller:
    def __init__(self, args):
        self.a, self.ws, self.seq = args, None, 0
        self.send_lock = asyncio.Lock()
        self.loop = asyncio.get_running_loop()
        self.sent = bytearray(); self.sent_frames = 0; self.first_sent_at = None
        self.received = bytearray(); self.arrivals = []  # (payload length, arrival time in s since first send)
        self.first_recv_at = None
        self.marks_received = self.marks_echoed = self.clears = self.violations = 0
        self.play_end = 0.0           # loop time at which the queued outbound ("played") audio finishes
        self.pending_marks = []       # [(due loop time, name)] in arrival order

    async def send(self, msg: dict, numbered: bool = True):
        """Every message after `connected` takes the next sequenceNumber (start is "1"); the lock keeps order."""
        async with self.send_lock:
            if numbered:
                self.seq += 1
                msg = {"event": msg["event"], "sequenceNumber": str(self.seq), **msg}
            await self.ws.send(json.dumps(msg))

    async def sender(self):
        a = self.a
        total = max(0, round(a.seconds / FRAME_S))
        t0 = self.loop.time()
        self.first_sent_at = t0
        for i in range(total):
            deadline = t0 + i * FRAME_S  # paced on absolute deadlines, so lateness never accumulates
            delay = deadline - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = sine_frame(i)
            await self.send({"event": "media", "streamSid": a.stream_sid,
                             "media": {"track": "inbound", "chunk": str(i + 1), "timestamp": str(i * 20),
                                       "payload": base64.b64encode(frame).decode()}})
            self.sent += frame; self.sent_frames += 1

    async def dtmf(self, t0: float):
        await asyncio.sleep(max(0.0, t0 + 1.0 - self.loop.time()))
        await self.send({"event": "dtmf", "streamSid": self.a.stream_sid,
                         "dtmf": {"track": "inbound_track", "digit": self.a.dtmf}})

    async def echo_mark(self, name: str):
        await self.send({"event": "mark", "streamSid": self.a.stream_sid, "mark": {"name": name}})
        self.marks_echoed += 1

    async def playout(self):
        """Echo each mark once the audio queued before it has 'played' (real-time drain of the playout queue)."""
        while True:
            now = self.loop.time()
            while self.pending_marks and self.pending_marks[0][0] <= now:
                await self.echo_mark(self.pending_marks.pop(0)[1])
            await asyncio.sleep(0.005)

    def valid(self, msg, keys: set, inner: str | None = None, inner_keys: set | None = None) -> bool:
        if not isinstance(msg, dict) or set(msg) != keys or msg.get("streamSid") != self.a.stream_sid:
            return False
        return inner is None or (isinstance(msg[inner], dict) and set(msg[inner]) == inner_keys)

    async def receiver(self):
        async for raw in self.ws:
            now = self.loop.time()
            try:
                msg = json.loads(raw) if isinstance(raw, str) else None  # binary frames are a violation
            except ValueError:
                msg = None
            event = msg.get("event") if isinstance(msg, dict) else None
            if event == "media":
                if not self.valid(msg, {"event", "streamSid", "media"}, "media", {"payload"}):
                    self.violations += 1
                try:
                    payload = base64.b64decode(msg["media"]["payload"], validate=True)
                except (KeyError, TypeError, ValueError):
                    self.violations += 1
                    continue
                if self.first_recv_at is None:
                    self.first_recv_at = now
                self.received += payload
                self.arrivals.append((len(payload), round(now - (self.first_sent_at or now), 4)))
                self.play_end = max(self.play_end, now) + len(payload) / 8000.0  # 8 bytes per ms
            elif event == "mark":
                ok = self.valid(msg, {"event", "streamSid", "mark"}, "mark", {"name"})
                name = msg.get("mark", {}).get("name") if isinstance(msg.get("mark"), dict) else None
                if not ok or not isinstance(name, str):
                    self.violations += 1
                    continue
                self.marks_received += 1
                self.pending_marks.append((max(self.play_end, now), name))
            elif event == "clear":
                if not self.valid(msg, {"event", "streamSid"}):
                    self.violations += 1
                self.clears += 1
                self.play_end = now  # queued audio dropped; every pending mark comes back at once
                pending, self.pending_marks = self.pending_marks, []
                for _, name in pending:
                    await self.echo_mark(name)
            else:
                self.violations += 1  # not JSON, or an event a bidirectional server may not send

    async def run(self) -> int:
        a = self.a
        headers = {"X-Twilio-Signature": twilio_signature(a.auth_token, a.signed_url)}
        params = inspect.signature(ws_connect).parameters
        kw = {"additional_headers" if "additional_headers" in params else "extra_headers": headers,
              "compression": None, "open_timeout": 5}
        if "proxy" in params:
            kw["proxy"] = None  # never route the local test through an environment proxy
        try:
            self.ws = await ws_connect(a.url, **kw)
        except Exception as exc:  # noqa: BLE001 - report any connect failure the same way
            status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)
            print(f"twilio_caller: could not connect to {a.url}: "
                  + (f"HTTP {status} (upgrade refused)" if status else f"{type(exc).__name__}: {exc}"), file=sys.stderr)
            return 1
        close_code = None
        try:
            await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, numbered=False)
            await self.send({"event": "start", "start": {
                "accountSid": a.account_sid, "streamSid": a.stream_sid, "callSid": a.call_sid,
                "tracks": ["inbound"], "customParameters": dict(a.params),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
                "streamSid": a.stream_sid})
            t0 = self.loop.time()
            recv_task = asyncio.create_task(self.receiver())
            tasks = [asyncio.create_task(self.sender()), asyncio.create_task(self.playout())]
            if a.dtmf:
                tasks.append(asyncio.create_task(self.dtmf(t0)))
            await asyncio.wait([recv_task], timeout=max(0.0, t0 + a.seconds + 1.5 - self.loop.time()))
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not recv_task.done():
                await self.send({"event": "stop", "streamSid": a.stream_sid,
                                 "stop": {"accountSid": a.account_sid, "callSid": a.call_sid}})
                try:
                    await asyncio.wait_for(self.ws.close(code=1000), timeout=2.0)
                except asyncio.TimeoutError:
                    pass
            await asyncio.wait([recv_task], timeout=0.5)
            recv_task.cancel()
            await asyncio.gather(recv_task, return_exceptions=True)
        except websockets.ConnectionClosed:
            pass  # the server hung up early: still report what happened
        finally:
            close_code = getattr(self.ws, "close_code", None)
        self.write_result(close_code)
        return 0

    def write_result(self, close_code):
        latency = None
        if self.first_recv_at is not None and self.first_sent_at is not None:
            latency = round((self.first_recv_at - self.first_sent_at) * 1000, 1)
        result = {
            "sent_frames": self.sent_frames, "received_media_messages": len(self.arrivals),
            "received_bytes": len(self.received), "payload_sizes": sorted({n for n, _ in self.arrivals}),
            "marks_received": self.marks_received, "marks_echoed": self.marks_echoed, "clears": self.clears,
            "protocol_violations": self.violations, "close_code": close_code,
            "received_mulaw_b64": base64.b64encode(bytes(self.received)).decode(),
            "sent_mulaw_b64": base64.b64encode(bytes(self.sent)).decode(),
            "first_media_latency_ms": latency,
            "arrivals": [{"bytes": n, "t": t} for n, t in self.arrivals],  # each media message: length, arrival (s)
        }
        with open(self.a.out, "w") as f:
            json.dump(result, f)


def parse_param(text: str):
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, value


def main() -> int:
    p = argparse.ArgumentParser(description="Independent Twilio Media Streams caller (bidirectional stream peer).")
    p.add_argument("--url", required=True, help="ws:// URL to connect to, e.g. ws://127.0.0.1:PORT/twilio/media")
    p.add_argument("--auth-token", required=True, help="Twilio auth token used as the HMAC-SHA1 key")
    p.add_argument("--signed-url", required=True, help="public wss:// URL the signature is computed over")
    p.add_argument("--call-sid", default="CA" + "0" * 31 + "2")
    p.add_argument("--account-sid", default="AC" + "0" * 31 + "1")
    p.add_argument("--stream-sid", default="MZ" + "0" * 31 + "3")
    p.add_argument("--param", action="append", default=[], type=parse_param, help="name=value (repeatable)")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds of audio to send")
    p.add_argument("--dtmf", default=None, help="a digit sent 1 s after the audio starts")
    p.add_argument("--out", required=True, help="where to write the JSON result")
    args = p.parse_args()
    args.params = args.param
    return asyncio.run(_run(args))


async def _run(args) -> int:
    return await Caller(args).run()  # Caller needs the running loop, so construct it inside asyncio.run


if __name__ == "__main__":
    sys.exit(main())
