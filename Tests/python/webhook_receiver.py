#!/usr/bin/env python3
"""A webhook receiver that checks Patchbay's signatures with the `standardwebhooks` reference library.

Usage: webhook_receiver.py PORT SECRET FAIL_FIRST OUT_FILE [DELAY_SECONDS]. Answers 500 to the first FAIL_FIRST
deliveries of each webhook-id, then 200, after DELAY_SECONDS; appends one JSON line per request to OUT_FILE when it
arrives ("status": "received") and when it is answered: {"id", "type", "valid", "status", "attempt"}. Runs until
killed.
"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from standardwebhooks.webhooks import Webhook
from peers import answer

port, secret, fail_first, out_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
delay = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
seen = {}
verifier = Webhook(secret)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = verifier.verify(body, headers)
            valid = True
        except Exception:
            payload, valid = json.loads(body or b"{}"), False
        wid = headers.get("webhook-id", "")
        seen[wid] = seen.get(wid, 0) + 1
        status = 500 if seen[wid] <= fail_first else 200
        if delay:
            with open(out_path, "a") as f:
                f.write(json.dumps({"id": wid, "status": "received"}) + "\n")
            time.sleep(delay)
        with open(out_path, "a") as f:
            f.write(json.dumps({"id": wid, "type": payload.get("type"), "valid": valid, "status": status, "attempt": seen[wid]}) + "\n")
        answer(self, status)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
