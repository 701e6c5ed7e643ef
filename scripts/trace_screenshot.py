#!/usr/bin/python3
"""Screenshot of a gort execution trace in Chrome's trace viewer, from
headless Chromium (docs/profiling.md's picture).

    scripts/trace_screenshot.py TRACE.json OUT.png [TITLE]

Perfetto's UI (ui.perfetto.dev) needs the network, and Chromium 156 no
longer ships chrome://tracing; the viewer chrome://tracing embedded is
catapult's, whose trace2html makes one self-contained HTML file of a
trace. CATAPULT names a checkout of github.com/catapult-project/catapult
(default /tmp/catapult). The page is opened in headless Chromium through
the DevTools protocol (Debian: chromium, python3-websocket); TITLE, when
given, selects the longest slice whose title contains it, whose details
the viewer then lists below the tracks."""
import base64, json, os, subprocess, sys, tempfile, time, urllib.request

import websocket

trace, out = sys.argv[1], sys.argv[2]
title = sys.argv[3] if len(sys.argv) > 3 else None
catapult = os.environ.get("CATAPULT", "/tmp/catapult")
tmp = tempfile.mkdtemp()
html = os.path.join(tmp, "trace.html")
subprocess.run([sys.executable, os.path.join(catapult, "tracing/bin/trace2html"), trace,
                "--output", html], check=True, stdout=subprocess.DEVNULL)
port = 9333
chrome = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--remote-debugging-port=%d" % port, "--user-data-dir=" + tmp,
                           "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):  # up to 10 s for the DevTools endpoint
        try:
            tabs = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json" % port))
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("chromium's DevTools endpoint did not come up")
    tab = [t for t in tabs if t["type"] == "page"][0]
    ws = websocket.create_connection(tab["webSocketDebuggerUrl"], suppress_origin=True)
    seq = 0

    def call(method, **params):
        global seq
        seq += 1
        ws.send(json.dumps({"id": seq, "method": method, "params": params}))
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == seq:
                return m.get("result", {})

    call("Emulation.setDeviceMetricsOverride", width=1600, height=900, deviceScaleFactor=1,
         mobile=False)
    call("Page.navigate", url="file://" + html)
    for _ in range(120):  # the import runs after the load: wait for its dialog to go
        time.sleep(0.5)
        r = call("Runtime.evaluate", returnByValue=True,
                 expression="!!document.querySelector('tr-ui-timeline-view') && "
                 "!document.querySelector('tr-ui-b-overlay[visible]') && "
                 "document.body.innerText.indexOf('Importing') < 0")
        if r.get("result", {}).get("value"):
            break
    time.sleep(1)
    if title:
        r = call("Runtime.evaluate", returnByValue=True, expression="""(function(title) {
            const view = document.querySelector('tr-ui-timeline-view');
            let best = null;
            for (const e of view.model.getDescendantEvents())
                if (e.title && e.title.indexOf(title) >= 0 && e.duration !== undefined &&
                    (!best || e.duration > best.duration)) best = e;
            if (!best) return 'no slice titled ' + title;
            view.brushingStateController.changeSelectionFromTimeline(
                new tr.model.EventSet([best]));
            return 'selected ' + best.title + ', ' + best.duration + ' ms';
        })(%s)""" % json.dumps(title))
        print(r.get("result", {}).get("value", r))
        time.sleep(1)
    shot = call("Page.captureScreenshot", format="png")
    with open(out, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
finally:
    chrome.kill()
