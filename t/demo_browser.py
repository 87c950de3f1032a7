#!/usr/bin/python3
"""Drives the demo page (conf-examples/demo/) in headless Chromium over the
Chrome DevTools Protocol, for t/070-demo-browser.t.

    /usr/bin/python3 t/demo_browser.py --port PORT [--cdp-port N]
        [--artifacts DIR] [--tag NAME] [--chromium PATH] [--slow F]

nginx must serve the page at http://127.0.0.1:PORT/demo/, the hub at
/api/hub, its sockets at /bind/ and the token endpoint at /oauth/token.

Two pages (A and B) log in and get two topics, subscribe, A starts a
conference with B's topic, both publish, each must show the other's
events; after A ends the conference, B must no longer get A's events.
Both pages are saved as screenshots: DIR/demo-NAME-A.png and -B.png
(default build/artifacts, NAME "local").

Prints one line per check, "ok <name>" or "not ok <name>: <detail>",
diagnostics as "# ..." lines, and "done" at the end; exits 0 when every
check passed, 1 otherwise (a missing chromium or websockets module is a
failure, never a skip).

The browser runs in its own process group with a temporary profile (and
HOME) directory; it is stopped (Browser.close, then SIGTERM and SIGKILL to
the group) and the directory removed on every path out; on SIGTERM, SIGINT
or SIGHUP the group gets SIGKILL at once and the driver exits 128+signal.
--cdp-port 0 (the default) lets Chromium pick a free port (read from
<profile>/DevToolsActivePort); a fixed port is read back from the
browser's "DevTools listening on ws://..." line.
"""

import argparse
import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FAILED = []
PASSED = []
BROWSERS = []       # stopped on every way out, see __main__


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def check(name, cond, detail=""):
    if cond:
        PASSED.append(name)
        out("ok %s" % name)
    else:
        FAILED.append(name)
        out("not ok %s: %s" % (name, detail))
    return cond


def diag(text):
    for line in str(text).splitlines() or [""]:
        out("# " + line)


class Abort(Exception):
    """a check failed that later steps depend on"""


def require(name, cond, detail=""):
    if not check(name, cond, detail):
        raise Abort(name)


try:
    import websockets
except ImportError:  # pragma: no cover
    check("python3-websockets is installed (%s)" % sys.executable, False,
          "apt-get install python3-websockets (scripts/install-deps.sh)")
    out("done")
    sys.exit(1)


# ---------------------------------------------------------------------------
# a small DevTools Protocol client: one browser socket, flattened sessions

class CDP:
    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending = {}
        self.console = {}       # sessionId -> [text]
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, url):
        ws = await websockets.connect(url, max_size=None, ping_interval=None,
                                      open_timeout=10)
        return cls(ws)

    async def _read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if "id" in msg:
                    fut = self.pending.pop(msg["id"], None)
                    if fut and not fut.done():
                        fut.set_result(msg)
                else:
                    self._event(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("DevTools socket closed"))
            self.pending.clear()

    def _event(self, msg):
        sid = msg.get("sessionId")
        p = msg.get("params", {})
        m = msg.get("method")
        text = None
        if m == "Runtime.consoleAPICalled":
            text = "console.%s: %s" % (p.get("type"), " ".join(
                str(a.get("value", a.get("description", "")))
                for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = "exception: %s %s" % (
                d.get("text", ""),
                d.get("exception", {}).get("description", ""))
        elif m == "Log.entryAdded":
            e = p.get("entry", {})
            text = "log.%s: %s %s" % (e.get("level"), e.get("text"),
                                      e.get("url", ""))
        if text is not None:
            self.console.setdefault(sid, []).append(text)

    async def send(self, method, params=None, session=None, timeout=10):
        i = next(self.ids)
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        await self.ws.send(json.dumps(msg))
        try:
            r = await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(i, None)
        if "error" in r:
            raise RuntimeError("%s: %s" % (method, r["error"]))
        return r.get("result", {})

    async def close(self):
        self.reader.cancel()
        await self.ws.close()


class Page:
    def __init__(self, cdp, name, session, slow):
        self.cdp = cdp
        self.name = name
        self.session = session
        self.slow = slow

    async def call(self, method, params=None, timeout=10):
        return await self.cdp.send(method, params, self.session,
                                   timeout * self.slow)

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", {
            "expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise RuntimeError("%s: %s" % (expr[:60], d.get("exception", {})
                                           .get("description", d.get("text"))))
        return r.get("result", {}).get("value")

    async def wait(self, expr, timeout=10):
        """polls expr until it is truthy; its value, or None at the timeout"""
        deadline = time.monotonic() + timeout * self.slow
        while True:
            try:
                v = await self.eval(expr)
            except RuntimeError:
                v = None        # e.g. the page is still navigating
            if v:
                return v
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.1)

    async def click(self, elem_id):
        ok = await self.eval("(function(){var e=document.getElementById(%s);"
                             "if(!e)return false;e.click();return true})()"
                             % json.dumps(elem_id))
        if not ok:
            raise RuntimeError("no #%s on page %s" % (elem_id, self.name))

    async def set_value(self, elem_id, value):
        await self.eval("document.getElementById(%s).value=%s"
                        % (json.dumps(elem_id), json.dumps(value)))

    async def text(self, elem_id):
        return await self.eval("(function(){var e=document.getElementById(%s);"
                               "return e?e.textContent:null})()"
                               % json.dumps(elem_id))

    async def attr(self, elem_id, name):
        return await self.eval("(function(){var e=document.getElementById(%s);"
                               "return e?e.getAttribute(%s):null})()"
                               % (json.dumps(elem_id), json.dumps(name)))

    def events_expr(self, **match):
        """JS: the #events items whose data-* attributes equal match"""
        sel = "#events li" + "".join(
            '[data-%s="%s"]' % (k, v.replace("\\", "\\\\").replace('"', '\\"'))
            for k, v in match.items())
        return "document.querySelectorAll(%s)" % json.dumps(sel)

    async def count_events(self, **match):
        return await self.eval(self.events_expr(**match) + ".length")

    async def wait_event(self, timeout=10, **match):
        return await self.wait(self.events_expr(**match) + ".length",
                               timeout)

    async def log_lines(self):
        return await self.eval("Array.prototype.map.call("
                               "document.querySelectorAll('#log li'),"
                               "function(l){return l.textContent})") or []

    async def screenshot(self, path):
        await self.call("Page.bringToFront")
        m = await self.call("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m.get("contentSize")
        w = max(1, min(int(size["width"]), 2000))
        h = max(1, min(int(size["height"]), 4000))
        r = await self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}},
            timeout=30)
        data = base64.b64decode(r["data"])
        with open(path, "wb") as f:
            f.write(data)
        return len(data)


# ---------------------------------------------------------------------------
# the browser process

class Browser:
    def __init__(self, chromium, cdp_port, slow):
        self.chromium = chromium
        self.cdp_port = cdp_port
        self.slow = slow
        self.proc = None
        self.profile = None
        self.stopped = False

    def start(self):
        self.profile = tempfile.mkdtemp(prefix="cast-demo-chromium-")
        home = os.path.join(self.profile, "home")
        os.mkdir(home)
        env = dict(os.environ, HOME=home,
                   XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"))
        env.pop("DISPLAY", None)
        args = [self.chromium, "--headless=new", "--no-sandbox",
                "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-extensions",
                "--disable-default-apps", "--mute-audio",
                "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows",
                "--disable-renderer-backgrounding",
                "--password-store=basic", "--use-mock-keychain",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=%d" % self.cdp_port,
                "--user-data-dir=" + os.path.join(self.profile, "data"),
                "--window-size=1200,1000", "about:blank"]
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     env=env, start_new_session=True)

    def log_tail(self, n=15):
        try:
            with open(os.path.join(self.profile, "chromium.log"), "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    async def devtools_url(self, timeout=30):
        """ws URL of the browser target: from <profile>/DevToolsActivePort
        (written with port 0) or the "DevTools listening on" line of the
        browser's output (a fixed port)"""
        path = os.path.join(self.profile, "data", "DevToolsActivePort")
        logf = os.path.join(self.profile, "chromium.log")
        deadline = time.monotonic() + timeout * self.slow
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return None
            try:
                with open(path) as f:
                    lines = f.read().split("\n")
                if len(lines) >= 2 and lines[0].strip() and lines[1].strip():
                    return "ws://127.0.0.1:%s%s" % (lines[0].strip(),
                                                   lines[1].strip())
            except OSError:
                pass
            try:
                with open(logf, "rb") as f:
                    m = re.search(rb"DevTools listening on (ws://\S+)",
                                  f.read())
                if m:
                    return m.group(1).decode()
            except OSError:
                pass
            await asyncio.sleep(0.1)
        return None

    def group_alive(self):
        """live (non-zombie) processes of the browser's process group"""
        pgid = self.proc.pid
        alive = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            fields = st[st.rfind(")") + 2:].split()
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                alive.append(int(d))
        return alive

    def kill_now(self):
        """SIGKILL to the group and the profile removed (signal handler)"""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + 5
            while self.group_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)

    def stop(self):
        """SIGTERM then SIGKILL to the whole group; profile removed"""
        if self.stopped:
            return
        self.stopped = True
        if self.proc is not None:
            pgid = self.proc.pid
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    if self.proc.poll() is not None and not self.group_alive():
                        break
                    time.sleep(0.05)
                if self.proc.poll() is not None and not self.group_alive():
                    break
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if getattr(self, "log", None):
            self.log.close()
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)


# ---------------------------------------------------------------------------
# the scenario

async def open_page(cdp, name, url, slow):
    # a window each: both pages render and run their timers unthrottled
    target = await cdp.send("Target.createTarget",
                            {"url": "about:blank", "newWindow": True})
    att = await cdp.send("Target.attachToTarget",
                         {"targetId": target["targetId"], "flatten": True})
    page = Page(cdp, name, att["sessionId"], slow)
    page.target = target["targetId"]
    await page.call("Runtime.enable")
    await page.call("Page.enable")
    await page.call("Log.enable")
    await page.call("Emulation.setDeviceMetricsOverride", {
        "width": 1200, "height": 1000, "deviceScaleFactor": 1,
        "mobile": False})
    await page.call("Page.navigate", {"url": url})
    return page


async def scenario(args, state):
    base = "http://127.0.0.1:%d" % args.port
    slow = args.slow

    browser = Browser(args.chromium, args.cdp_port, slow)
    state["browser"] = browser
    BROWSERS.append(browser)
    browser.start()
    url = await browser.devtools_url()
    if not check("chromium started and serves DevTools", url is not None,
                 "no DevToolsActivePort; chromium log:\n"
                 + browser.log_tail()):
        raise Abort("chromium")
    cdp = await CDP.connect(url)
    state["cdp"] = cdp

    pages = {}
    state["pages"] = pages
    for name in ("A", "B"):
        pages[name] = await open_page(
            cdp, name, "%s/demo/?name=DEMO-%s" % (base, name), slow)
    A, B = pages["A"], pages["B"]

    for p in (A, B):
        ready = await p.wait("document.body && "
                             "document.body.getAttribute('data-ready')==='1' "
                             "&& typeof window.castDemo==='object'", 15)
        require("page %s: the demo page loads and its script runs" % p.name,
                ready, "console: %s" % cdp.console.get(p.session))
        look = await p.eval(
            "(function(){var c=getComputedStyle(document.querySelector("
            "'header'));return c.backgroundColor})()")
        check("page %s: demo.css applies (header background %s)"
              % (p.name, look), look not in (None, "", "rgba(0, 0, 0, 0)"),
              "the stylesheet was not applied (MIME type?)")

    # 1. log in through the token endpoint
    topics = {}
    for p in (A, B):
        await p.click("login")
        st = await p.wait("(function(){var s=document.getElementById("
                          "'login-state').getAttribute('data-state');"
                          "return s==='pending'?null:s})()", 10)
        topic = await p.text("token-topic")
        sub = await p.text("token-subscriber")
        require("page %s: logs in through POST /oauth/token (topic %s)"
                % (p.name, topic), st and st != "failed" and topic,
                "login-state %s; log: %s" % (st, await p.log_lines()))
        check("page %s: subscriber_name is DEMO-%s-XXXXXX (%s)"
              % (p.name, p.name, sub),
              sub is not None and len(sub) == len("DEMO-A-") + 6
              and sub.startswith("DEMO-%s-" % p.name)
              and sub[7:].isalnum() and sub[7:].upper() == sub[7:],
              "got %r" % sub)
        check("page %s: the topic field takes the token's topic" % p.name,
              await p.eval("document.getElementById('topic').value") == topic,
              "topic field differs from %r" % topic)
        topics[p.name] = topic
    require("the two logins get two topics (%s, %s)"
            % (topics["A"], topics["B"]), topics["A"] != topics["B"])

    # 2. subscribe: 202, socket open, confirmation received
    for p in (A, B):
        await p.click("subscribe")
        st = await p.wait("(function(){var s=document.getElementById("
                          "'socket-state').getAttribute('data-state');"
                          "return s==='subscribed'||s==='failed'||"
                          "s==='closed'||s==='denied'?s:null})()", 10)
        ep = await p.text("endpoint")
        require("page %s: subscribes, opens the socket and gets the "
                "confirmation" % p.name, st == "subscribed",
                "socket-state %s; log: %s" % (st, await p.log_lines()))
        check("page %s: endpoint is ws://127.0.0.1:%d/bind/..."
              % (p.name, args.port),
              (ep or "").startswith("ws://127.0.0.1:%d/bind/" % args.port),
              "endpoint %r" % ep)

    # 3. A starts a conference with B's topic
    await A.set_value("conf-topics", topics["B"])
    await A.set_value("conf-title", "Browser test")
    await A.click("conf-start")
    st = await A.wait("(function(){var r=document.getElementById("
                      "'conf-result');return r.getAttribute('data-action')"
                      "==='start'?r.getAttribute('data-status'):null})()", 10)
    # the rest runs either way (publish and echo do not need it), with
    # shorter waits for what the conference would have delivered
    conf = check("page A: POST /api/hub/conference answers 2xx (%s)" % st,
                 st is not None and st.startswith("2") and len(st) == 3,
            "conf-result %r; log: %s" % (await A.text("conf-result"),
                                         await A.log_lines()))
    xt = 10 if conf else 2
    listed = await A.wait(
        "(function(){var l=document.querySelector('#conferences li[data-host="
        + json.dumps(topics["A"]).replace("'", "\\'") + "]');"
        "return l?l.getAttribute('data-topics'):null})()", xt)
    check("page A: GET /api/hub/conference lists the conference of %s with "
          "%s" % (topics["A"], topics["B"]),
          listed is not None and topics["B"] in listed.split(","),
          "listed topics %r; list: %r" % (listed, await A.text("conferences")))
    for p in (A, B):
        n = await p.wait_event(xt, event="conference-start")
        check("page %s: shows conference-start" % p.name, n,
              "events: %s" % await p.eval(p.events_expr() + ".length"))
    cur = await B.text("current-conference")
    check("page B: the header names the conference (%s)" % cur,
          cur is not None and cur.startswith("Browser test (host %s)"
                                             % topics["A"]),
          "got %r" % cur)

    # 4. A publishes annotation-update; B shows it (hub.topic stays A's)
    async def publish(page, button, kind):
        await page.eval("document.getElementById('publish-result')"
                        ".setAttribute('data-status','')")
        await page.click(button)
        st = await page.wait("document.getElementById('publish-result')"
                             ".getAttribute('data-status')", 10)
        pid = await page.attr("last-published", "data-id")
        require("page %s: publishes %s (%s, id %s)"
                % (page.name, kind, st, pid),
                st is not None and st.startswith("2") and pid,
                "log: %s" % await page.log_lines())
        return pid

    aid = await publish(A, "publish-annotation", "annotation-update")
    n = await B.wait_event(xt, id=aid, event="annotation-update",
                           topic=topics["A"])
    check("page B shows A's annotation-update (hub.topic %s) through the "
          "conference" % topics["A"], n,
          "page B log: %s" % await B.log_lines())
    n = await A.wait_event(10, id=aid, event="annotation-update")
    check("page A shows its own annotation-update (echo)", n)
    await asyncio.sleep(0.5)
    n = await B.count_events(id=aid)
    check("page B shows it once (%s)" % n, n == 1, "shown %s times" % n)
    js = await B.eval("(function(){var l=" + B.events_expr(id=aid)
                      + "[0];return l?l.querySelector('pre').textContent:"
                      "null})()")
    try:
        got = json.loads(js or "null")
        ctx = got["event"]["context"][0]
        good = (ctx["key"] == "annotation"
                and ctx["resource"]["metadata"]["toolName"] == "ArrowAnnotate"
                and got["id"] == aid)
    except (ValueError, KeyError, TypeError, IndexError):
        good = False
    check("page B shows the event's JSON unchanged (annotation, "
          "ArrowAnnotate, same id)", good, "json %r" % (js or "")[:300])

    # 5. the other direction and the other buttons
    sid = await publish(B, "publish-study", "imagingstudy-open")
    n = await A.wait_event(xt, id=sid, event="imagingstudy-open",
                           topic=topics["B"])
    check("page A shows B's imagingstudy-open through the conference", n,
          "page A log: %s" % await A.log_lines())
    pid = await publish(A, "publish-patient", "patient-open")
    n = await B.wait_event(xt, id=pid, event="patient-open",
                           topic=topics["A"])
    check("page B shows A's patient-open through the conference", n)

    # 6. A ends the conference; B hears the end and no longer A's events
    await A.click("conf-end")
    st = await A.wait("(function(){var r=document.getElementById("
                      "'conf-result');return r.getAttribute('data-action')"
                      "==='end'?r.getAttribute('data-status'):null})()", xt)
    check("page A: DELETE /api/hub/conference answers 200 (%s)" % st,
          st == "200", "conf-result %r" % await A.text("conf-result"))
    gone = await A.wait(
        "document.getElementById('conferences').getAttribute('data-count')"
        "==='0'", xt)
    check("page A: the list is empty after the end", gone,
          "list %r" % await A.text("conferences"))
    n = await B.wait_event(xt, event="conference-end")
    check("page B shows conference-end", n)
    cur = await B.text("current-conference")
    check("page B: the header no longer names a conference", cur == "-",
          "got %r" % cur)

    aid2 = await publish(A, "publish-annotation", "annotation-update")
    n = await A.wait_event(10, id=aid2)
    check("page A shows its annotation-update after the end", n)
    await asyncio.sleep(1.0 * slow)
    n = await B.count_events(id=aid2)
    check("page B no longer gets A's events after the end", n == 0,
          "shown %s times" % n)


async def take_screenshots(args, pages):
    os.makedirs(args.artifacts, exist_ok=True)
    for name, page in sorted(pages.items()):
        path = os.path.join(args.artifacts,
                            "demo-%s-%s.png" % (args.tag, name))
        try:
            size = await page.screenshot(path)
            check("page %s: screenshot %s (%d bytes)" % (name, path, size),
                  size > 1000, "too small")
        except Exception as e:      # noqa: BLE001 - reported as a failure
            check("page %s: screenshot %s" % (name, path), False, repr(e))


async def main(args):
    state = {}
    try:
        await asyncio.wait_for(scenario(args, state), args.timeout * args.slow)
    except Abort:
        pass
    except asyncio.TimeoutError:
        check("the scenario finishes within %d s" % args.timeout, False,
              "timed out")
    except Exception as e:          # noqa: BLE001 - reported as a failure
        check("the scenario runs without errors", False, repr(e))
    pages = state.get("pages") or {}
    cdp = state.get("cdp")
    browser = state.get("browser")
    try:
        if pages and FAILED:
            for name, page in sorted(pages.items()):
                try:
                    diag("page %s log:\n%s" % (name, "\n".join(
                        await asyncio.wait_for(page.log_lines(), 5))))
                except Exception:   # noqa: BLE001
                    pass
                diag("page %s console:\n%s" % (name, "\n".join(
                    cdp.console.get(page.session, []))))
        if pages:
            await asyncio.wait_for(take_screenshots(args, pages), 60)
        if cdp:
            try:
                await asyncio.wait_for(cdp.send("Browser.close"), 5)
            except Exception:       # noqa: BLE001 - killed below anyway
                pass
            try:
                await asyncio.wait_for(cdp.close(), 5)
            except Exception:       # noqa: BLE001
                pass
    finally:
        if browser and browser.proc:
            profile = browser.profile
            browser.stop()
            check("chromium stopped (process group %d empty)"
                  % browser.proc.pid, not browser.group_alive(),
                  "still running: %s" % browser.group_alive())
            check("temporary profile removed", not os.path.exists(profile),
                  profile)


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cdp-port", type=int,
                    default=int(os.environ.get("TEST_NGINX_CHROMIUM_PORT",
                                               "0")))
    ap.add_argument("--artifacts", default="build/artifacts")
    ap.add_argument("--tag", default="local")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM",
                                                          "chromium"))
    ap.add_argument("--slow", type=float, default=1.0)
    ap.add_argument("--timeout", type=int, default=120)
    return ap.parse_args()


def on_signal(signum, frame):
    """SIGTERM (e.g. from coreutils timeout), SIGINT, SIGHUP: the browser
    goes at once, not after the event loop's cancellations"""
    check("not interrupted", False, "signal %d: browser killed" % signum)
    for b in BROWSERS:
        b.kill_now()
    os._exit(128 + signum)


if __name__ == "__main__":
    args = parse()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    if not shutil.which(args.chromium):
        check("chromium is installed (%s)" % args.chromium, False,
              "apt-get install chromium (scripts/install-deps.sh)")
        out("done")
        sys.exit(1)
    try:
        asyncio.run(main(args))
    finally:
        for b in BROWSERS:
            b.stop()
    out("done")
    sys.exit(1 if FAILED or not PASSED else 0)
