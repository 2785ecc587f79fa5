#!/usr/bin/env python3
"""A bounded HTTP load client that counts every failure.

Threads POST the seed /predict request over keep-alive connections until at least
--min-requests were sent *and* --stop-file exists, or until --max-requests or --max-seconds
(whichever comes first: the run is always bounded). Any answer other than 200 with a prediction,
and any connection error or timeout, is a failure. Prints one JSON line of counts and exits 1 on
a failure, or when the bound ended the run before the stop file appeared.

    load-client.py --url http://127.0.0.1:8080/predict --min-requests 20000 --stop-file /tmp/done
    load-client.py ... --token-file token   # auth on: Authorization: Bearer <the file's token>
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

SEED = json.dumps(
    {"BASKET_SIZE": "M", "BASKET_TYPE": "MIXED", "STORE_REGION": "LONDON", "STORE_FORMAT": "LS",
     "SPEND": 125.50, "QUANTITY": 3, "PROD_CODE_20": "FOOD", "PROD_CODE_30": "FRESH"}
).encode()


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.ok = 0
        self.status = {}
        self.errors = {}

    def take(self, limit):
        """Claims one request slot; False once `limit` were claimed."""
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True

    def record(self, status=None, error=None):
        with self.lock:
            if error is not None:
                self.errors[error] = self.errors.get(error, 0) + 1
            elif status == 200:
                self.ok += 1
            else:
                self.status[status] = self.status.get(status, 0) + 1


def worker(url, counts, stop, limit, timeout, token):
    conn = None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    while not stop.is_set() and counts.take(limit):
        try:
            if conn is None:
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
            conn.request("POST", url.path, body=SEED, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status == 200 and b'"prediction"' not in body:
                counts.record(error="200 without a prediction")
            else:
                counts.record(status=response.status)
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            counts.record(error=type(e).__name__)
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--min-requests", type=int, default=20000)
    parser.add_argument("--max-requests", type=int, default=500000)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--stop-file", help="stop (once --min-requests were sent) when this file exists")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=10, help="seconds per request")
    parser.add_argument("--token-file", help="send the bearer token this file holds (auth on)")
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    token = open(args.token_file).read().strip() if args.token_file else None
    counts = Counts()
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(url, counts, stop, args.max_requests, args.timeout, token))
               for _ in range(args.threads)]
    start = time.monotonic()
    for t in threads:
        t.start()
    stopped_by = "bound"
    while any(t.is_alive() for t in threads):
        time.sleep(0.1)
        elapsed = time.monotonic() - start
        with counts.lock:
            sent = counts.sent
        signalled = args.stop_file is None or os.path.exists(args.stop_file)
        if sent >= args.min_requests and signalled:
            stopped_by = "stop file" if args.stop_file else "min requests"
            stop.set()
        elif elapsed >= args.max_seconds:
            stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    failed = sum(counts.status.values()) + sum(counts.errors.values())
    done = counts.ok + failed
    report = {"requests": done, "ok": counts.ok, "failed": failed,
              "non_200": {str(k): v for k, v in sorted(counts.status.items())}, "errors": counts.errors,
              "seconds": round(elapsed, 1), "per_second": round(done / elapsed), "stopped_by": stopped_by}
    print(json.dumps(report), flush=True)
    return 0 if failed == 0 and done >= args.min_requests and stopped_by != "bound" else 1


if __name__ == "__main__":
    sys.exit(main())
