#!/usr/bin/python3
"""An independent check of the hub's WebSocket channel with a strict
third-party client (Debian's python3-websockets), used by t/026-ws-client.t.

    /usr/bin/python3 t/ws_client.py PORT [TOPIC]

Prints one line per check, "ok <name>" or "not ok <name>: <detail>", and
"done" at the end; exits 0 when every check passed, 1 otherwise, 2 when
the websockets package is missing.
"""

import asyncio
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

try:
    import websockets
except ImportError:  # pragma: no cover
    print("skip: no websockets module in", sys.executable)
    sys.exit(2)

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 1984
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "py-topic"
BASE = "http://127.0.0.1:%d" % PORT
FAILED = []


def check(name, cond, detail=""):
    if cond:
        print("ok %s" % name)
    else:
        FAILED.append(name)
        print("not ok %s: %s" % (name, detail))
    sys.stdout.flush()
    return cond


def http(method, path, body=None, ctype=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def hub_form(fields):
    body = urllib.parse.urlencode(fields)
    return http("POST", "/api/hub", body, "application/x-www-form-urlencoded")


def subscribe(events):
    code, body = hub_form({"hub.mode": "subscribe", "hub.channel.type": "websocket",
                           "hub.topic": TOPIC, "hub.events": events,
                           "hub.lease_seconds": "600", "subscriber.name": "python"})
    check("subscribe answers 202", code == 202, "%s %s" % (code, body))
    endpoint = json.loads(body).get("hub.channel.endpoint", "")
    check("endpoint is ws://127.0.0.1:%d/bind/<id>" % PORT,
          endpoint.startswith("ws://127.0.0.1:%d/bind/" % PORT), endpoint)
    return endpoint


async def recv_json(ws, what):
    try:
        msg = await asyncio.wait_for(ws.recv(), 3)
    except Exception as e:  # timeout or closed
        check(what, False, repr(e))
        return {}
    check(what + " is a text frame", isinstance(msg, str), repr(msg))
    try:
        return json.loads(msg)
    except ValueError:
        check(what + " is JSON", False, msg)
        return {}


async def scenario_unsubscribe():
    endpoint = subscribe("patient-open,patient-close")
    async with websockets.connect(endpoint, compression=None, open_timeout=5,
                                  close_timeout=5, ping_interval=None) as ws:
        hello = await recv_json(ws, "first frame")
        check("connection.established", hello.get("type") == "connection.established", hello)
        conf = await recv_json(ws, "second frame")
        # the lease left, in whole seconds: 599 once a second boundary passed
        check("confirmation", conf in ({"hub.mode": "subscribe", "hub.topic": TOPIC,
                                        "hub.events": "patient-open,patient-close",
                                        "hub.lease_seconds": n} for n in (600, 599)), conf)

        body = json.dumps({"id": "py-http-1", "timestamp": "2024-01-01T00:00:00.000Z",
                           "event": {"hub.topic": TOPIC, "hub.event": "patient-open",
                                     "context": [{"key": "patient", "resource":
                                                  {"resourceType": "Patient", "id": "p1"}}]}})
        code, resp = http("POST", "/api/hub", body, "application/json")
        check("HTTP publish answers 200", code == 200, "%s %s" % (code, resp))
        msg = await asyncio.wait_for(ws.recv(), 3)
        check("HTTP-published event received byte for byte", msg == body, msg)

        sock = json.dumps({"id": "py-ws-1", "timestamp": "2024-01-01T00:00:01.000Z",
                           "event": {"hub.topic": TOPIC, "hub.event": "patient-close",
                                     "context": [{"key": "patient", "resource":
                                                  {"resourceType": "Patient", "id": "p1"}}]}})
        await ws.send(sock)
        msg = await asyncio.wait_for(ws.recv(), 3)
        check("socket-published event echoed to its own subscription", msg == sock, msg)

        pong = await ws.ping(b"py-ping")
        try:
            await asyncio.wait_for(pong, 3)
            check("ping answered with a pong", True)
        except Exception as e:
            check("ping answered with a pong", False, repr(e))

        await ws.send("not json")
        err = await recv_json(ws, "error frame")
        check("invalid JSON -> error frame with id null",
              err.get("error", "").startswith("invalid JSON") and "id" in err and err["id"] is None, err)

        code, resp = hub_form({"hub.mode": "unsubscribe", "hub.channel.type": "websocket",
                               "hub.topic": TOPIC, "hub.channel.endpoint": endpoint})
        check("unsubscribe answers 202", code == 202, "%s %s" % (code, resp))
        denial = await recv_json(ws, "denial")
        check("denial frame", denial == {"hub.mode": "denied", "hub.topic": TOPIC,
                                         "hub.events": "patient-open,patient-close",
                                         "hub.reason": "unsubscribed"}, denial)
        try:
            extra = await asyncio.wait_for(ws.recv(), 3)
            check("nothing after the denial but the close", False, repr(extra))
        except websockets.exceptions.ConnectionClosedOK:
            pass
        except Exception as e:
            check("the hub closes cleanly", False, repr(e))
        await asyncio.wait_for(ws.wait_closed(), 5)
        check("close code 1000", ws.close_code == 1000, ws.close_code)
        check("close reason 'unsubscribed'", ws.close_reason == "unsubscribed", ws.close_reason)


async def scenario_client_close():
    endpoint = subscribe("patient-open")
    ws = await websockets.connect(endpoint, compression=None, open_timeout=5,
                                  close_timeout=5, ping_interval=None)
    await recv_json(ws, "first frame (2)")
    await recv_json(ws, "second frame (2)")
    await ws.close(code=1000, reason="bye")
    check("client-initiated close completes with 1000", ws.close_code == 1000, ws.close_code)
    await asyncio.sleep(0.1)
    code, body = http("GET", "/cast/status")
    st = json.loads(body) if code == 200 else {}
    check("status: no socket and no subscription left",
          st.get("connections") == 0 and st.get("subscriptions") == 0, body)


async def main():
    await scenario_unsubscribe()
    await scenario_client_close()


try:
    asyncio.run(asyncio.wait_for(main(), 30))
except Exception as e:
    check("scenario ran to the end", False, repr(e))

print("done")
sys.exit(1 if FAILED else 0)
