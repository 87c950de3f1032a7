#!/usr/bin/python3
"""The client side of scripts/docker-test.sh: drives the compose stack of
docker/compose.yml + docker/compose.host.yml from the host, over loopback,
with Debian's python3-websockets.

    /usr/bin/python3 scripts/docker-stack-check.py LB HUB1 HUB2 -- STOP-COMMAND...

LB, HUB1, HUB2: the 127.0.0.1 ports of the balancer and the two hubs.
  1. subscribes twice through the balancer (one topic), each endpoint URL
     must name the balancer;
  2. binds the first endpoint directly on hub 1, the second through the
     balancer;
  3. publishes an event directly on hub 2; both sockets must receive it;
  4. runs STOP-COMMAND (which stops the hubs) and expects both sockets to
     get Close 1001 from the hubs' graceful shutdown.
Prints "ok <name>" or "not ok <name>: <detail>" per check and "done" at the
end; exits 0 when every check passed, 1 otherwise.
"""

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import websockets

FAILED = []
PASSED = []


def check(name, cond, detail=""):
    if cond:
        PASSED.append(name)
        print("ok %s" % name)
    else:
        FAILED.append(name)
        print("not ok %s: %s" % (name, detail))
    sys.stdout.flush()
    return cond


def http(port, method, path, body=None, ctype=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=data, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, repr(e)


def subscribe(lb, topic, name):
    body = urllib.parse.urlencode({
        "hub.mode": "subscribe", "hub.channel.type": "websocket",
        "hub.topic": topic, "hub.events": "patient-open",
        "hub.lease_seconds": "600", "subscriber.name": name})
    code, resp = http(lb, "POST", "/api/hub", body,
                      "application/x-www-form-urlencoded")
    check("%s: subscribe through the balancer answers 202" % name,
          code == 202, "%s %s" % (code, resp))
    try:
        endpoint = json.loads(resp).get("hub.channel.endpoint", "")
    except ValueError:
        endpoint = ""
    prefix = "ws://127.0.0.1:%d/bind/" % lb
    check("%s: endpoint names the balancer (%s<id>)" % (name, prefix),
          endpoint.startswith(prefix) and len(endpoint) > len(prefix),
          endpoint)
    return endpoint[len(prefix) - len("/bind/"):] if endpoint else "/bind/x"


async def recv_json(ws, what, timeout=10):
    try:
        msg = await asyncio.wait_for(ws.recv(), timeout)
    except Exception as e:  # timeout or closed
        check(what, False, repr(e))
        return {}
    try:
        return json.loads(msg)
    except ValueError:
        check(what, False, "not JSON: %r" % msg)
        return {}


async def connect(port, path, name):
    url = "ws://127.0.0.1:%d%s" % (port, path)
    try:
        ws = await websockets.connect(url, compression=None, open_timeout=10,
                                      close_timeout=10, ping_interval=None)
    except Exception as e:
        check("%s: WebSocket %s opens" % (name, url), False, repr(e))
        return None
    check("%s: WebSocket %s opens" % (name, url), True)
    hello = await recv_json(ws, "%s: first frame" % name)
    check("%s: connection.established" % name,
          hello.get("type") == "connection.established", hello)
    conf = await recv_json(ws, "%s: second frame" % name)
    check("%s: subscription confirmed" % name,
          conf.get("hub.mode") == "subscribe", conf)
    return ws


async def wait_close(ws, name):
    """Reads until the hub closes; returns (code, reason)."""
    if ws is None:
        return None, None
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 60)
    except websockets.exceptions.ConnectionClosed:
        pass
    except Exception as e:
        check("%s: closed by the hub" % name, False, repr(e))
    return ws.close_code, ws.close_reason


async def main(lb, hub1, hub2, stop):
    topic = "docker-%d" % int(time.time() * 1000)
    path1 = subscribe(lb, topic, "direct")
    path2 = subscribe(lb, topic, "balanced")
    ws1 = await connect(hub1, path1, "direct")      # on hub 1
    ws2 = await connect(lb, path2, "balanced")      # whichever hub
    if ws1 is None or ws2 is None:
        return

    event = {"hub.topic": topic, "hub.event": "patient-open",
             "context": [{"key": "patient", "resource":
                          {"resourceType": "Patient", "id": "docker-p1"}}]}
    body = json.dumps({"id": "docker-ev-1",
                       "timestamp": "2026-01-01T00:00:00.000Z",
                       "event": event})
    code, resp = http(hub2, "POST", "/api/hub/" + topic, body,
                      "application/json")
    check("publish directly on hub 2 answers 2xx", 200 <= code < 300,
          "%s %s" % (code, resp))
    for ws, name in ((ws1, "direct"), (ws2, "balanced")):
        msg = await recv_json(ws, "%s: event arrives" % name)
        ev = msg.get("event", {})
        check("%s: the event published on hub 2 arrived" % name,
              msg.get("id") == "docker-ev-1"
              and ev.get("hub.event", "").lower() == "patient-open"
              and ev.get("context") == event["context"], msg)

    # stop the hubs while both sockets are open: graceful shutdown, 1001
    closes = asyncio.gather(wait_close(ws1, "direct"),
                            wait_close(ws2, "balanced"))
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*stop)
    rc = await proc.wait()
    check("stop command (%s) exits 0" % " ".join(stop), rc == 0, rc)
    (c1, r1), (c2, r2) = await asyncio.wait_for(closes, 60)
    took = time.monotonic() - t0
    check("direct: Close 1001 from hub 1's graceful stop", c1 == 1001,
          "code %s reason %r" % (c1, r1))
    check("balanced: Close 1001 through the balancer", c2 == 1001,
          "code %s reason %r" % (c2, r2))
    # docker stop's own default grace is 10 s: past it, a SIGKILL
    check("hubs quit gracefully within docker stop's default 10 s "
          "(%.1f s)" % took, took < 10, took)


def run():
    args = sys.argv[1:]
    if len(args) < 5 or args[3] != "--":
        print("usage: %s LB HUB1 HUB2 -- STOP-COMMAND..." % sys.argv[0],
              file=sys.stderr)
        sys.exit(2)
    lb, hub1, hub2 = (int(a) for a in args[:3])
    try:
        asyncio.run(asyncio.wait_for(main(lb, hub1, hub2, args[4:]), 150))
    except Exception as e:
        check("scenario ran to the end", False, repr(e))
    print("done")
    sys.exit(1 if FAILED or not PASSED else 0)


if __name__ == "__main__":
    run()
