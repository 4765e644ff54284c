#!/usr/bin/env python3
"""A receiver for Pusher-format server webhooks that checks each with the `pusher` library's validate_webhook.

Usage: pusher_webhook_receiver.py PORT APP_ID KEY SECRET FAIL_FIRST OUT_FILE. Answers 500 to the first FAIL_FIRST
requests, then 200; appends one JSON line per request to OUT_FILE: {"status", "valid", "events"}. Runs until killed.
"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pusher
from peers import answer

port, app_id, key, secret, fail_first, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
client = pusher.Pusher(app_id=app_id, key=key, secret=secret)
count = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        count += 1
        body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
        parsed = client.validate_webhook(key=self.headers.get("X-Pusher-Key", ""), signature=self.headers.get("X-Pusher-Signature", ""), body=body)
        status = 500 if count <= fail_first else 200
        with open(out_path, "a") as f:
            f.write(json.dumps({"status": status, "valid": parsed is not None, "events": json.loads(body).get("events", [])}) + "\n")
        answer(self, status)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
