/* Cast hub demo page: log in, subscribe, watch events, publish, confer.
 *
 * Plain browser JavaScript, no build step, nothing fetched from elsewhere.
 * Every URL is relative to the page's origin unless the query string names
 * another one (?hub=..., ?token=...); the WebSocket URL is the
 * hub.channel.endpoint the hub returns (ws:// or wss://).
 *
 * Wire shapes (see the project's SPEC.md and the Cast reference):
 *   POST {token}  form grant_type=client_credentials&client_product_name=N
 *                 [&topic=T] -> {"topic","access_token","subscriber_name",..}
 *   POST {hub}    form hub.mode=subscribe&hub.channel.type=websocket&...
 *                 -> 202 {"hub.channel.endpoint":"ws://.../bind/<id>"}
 *   POST {hub}    JSON {"timestamp","id","event":{"hub.topic","hub.event",
 *                 "context"}} -> 2xx
 *   POST/GET/DELETE {hub}/conference  JSON {"hostTopic","title","topics"}
 */
(function () {
    'use strict';

    var MAX_EVENTS = 200;       /* the lists stay bounded */
    var MAX_LOG = 100;

    var params = new URLSearchParams(window.location.search);
    var cfg = {
        hub: params.get('hub') || '/api/hub',
        token: params.get('token') || '/oauth/token',
        name: params.get('name') || '',
        topic: params.get('topic') || '',
        events: params.get('events') || '',
        lease: params.get('lease') || ''
    };
    cfg.hub = cfg.hub.replace(/\/+$/, '');

    var state = {
        token: null,            /* the token reply */
        topic: '',              /* the subscribed topic */
        endpoint: '',
        ws: null,
        published: {},          /* ids this page published (the last */
        publishedOrder: [],     /* MAX_EVENTS of them) */
        received: 0
    };

    function $(id) { return document.getElementById(id); }

    function now() {
        var d = new Date();
        function p(n, w) { return String(n).padStart(w || 2, '0'); }
        return p(d.getHours()) + ':' + p(d.getMinutes()) + ':'
               + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
    }

    function randomHex(bytes) {
        var a = new Uint8Array(bytes);
        window.crypto.getRandomValues(a);
        return Array.prototype.map.call(a, function (b) {
            return b.toString(16).padStart(2, '0');
        }).join('');
    }

    function uuid() {
        var h = randomHex(16);
        return h.slice(0, 8) + '-' + h.slice(8, 12) + '-4' + h.slice(13, 16)
               + '-' + ((parseInt(h[16], 16) & 3) | 8).toString(16)
               + h.slice(17, 20) + '-' + h.slice(20, 32);
    }

    function trimList(ul, max) {
        while (ul.children.length > max) {
            ul.removeChild(ul.lastChild);
        }
    }

    function log(text, kind) {
        var li = document.createElement('li');
        li.className = kind || 'info';
        li.textContent = now() + '  ' + text;
        $('log').insertBefore(li, $('log').firstChild);
        trimList($('log'), MAX_LOG);
        $('status-text').textContent = text;
        $('status-text').className = kind || 'info';
    }

    function setState(id, text) {
        $(id).textContent = text;
        $(id).setAttribute('data-state', text.split(' ')[0]);
    }

    /* one HTTP exchange: {status, text, json}; status 0 on network errors */
    function request(method, url, opts) {
        var init = { method: method, headers: {} };
        opts = opts || {};
        if (opts.form) {
            init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
            init.body = new URLSearchParams(opts.form).toString();
        } else if (opts.json !== undefined) {
            init.headers['Content-Type'] = 'application/json';
            init.body = JSON.stringify(opts.json);
        }
        if (opts.auth !== false && state.token && state.token.access_token) {
            init.headers.Authorization = 'Bearer ' + state.token.access_token;
        }
        return fetch(url, init).then(function (r) {
            return r.text().then(function (text) {
                var json = null;
                try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
                return { status: r.status, text: text, json: json };
            });
        }, function (err) {
            return { status: 0, text: String(err), json: null };
        });
    }

    function ok(r) { return r.status >= 200 && r.status < 300; }

    function reason(r) {
        if (r.json && typeof r.json === 'object') {
            var e = r.json.error || r.json.detail || r.json.error_description;
            if (e) {
                return typeof e === 'string' ? e : JSON.stringify(e);
            }
        }
        return r.text.slice(0, 200);
    }

    function currentTopic() {
        return $('topic').value.trim();
    }

    /* ---- 1. log in ------------------------------------------------------ */

    function login() {
        var form = {
            grant_type: 'client_credentials',
            client_product_name: $('client-name').value.trim() || 'DEMO'
        };
        var t = $('login-topic').value.trim();
        if (t) {
            form.topic = t;
        }
        setState('login-state', 'pending');
        return request('POST', cfg.token, { form: form, auth: false })
        .then(function (r) {
            if (!ok(r) || !r.json || !r.json.access_token) {
                setState('login-state', 'failed');
                log('login: ' + r.status + ' ' + reason(r), 'error');
                return false;
            }
            state.token = r.json;
            $('token-topic').textContent = r.json.topic || '';
            $('token-user').textContent = r.json.user_name || '';
            $('token-subscriber').textContent = r.json.subscriber_name || '';
            $('token-expires').textContent =
                r.json.expires_in ? r.json.expires_in + ' s' : '';
            if (r.json.topic) {
                $('topic').value = r.json.topic;
            }
            setState('login-state', r.json.user_name || r.json.topic || 'ok');
            log('logged in: topic ' + r.json.topic + ', subscriber '
                + (r.json.subscriber_name || '-'));
            return true;
        });
    }

    /* ---- 2. subscribe and the socket ------------------------------------ */

    function subscriberName() {
        return (state.token && state.token.subscriber_name)
               || $('client-name').value.trim() || 'DEMO';
    }

    function wsUrl(endpoint) {
        if (/^wss?:\/\//i.test(endpoint)) {
            return endpoint;
        }
        var u = new URL(endpoint, window.location.href);
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        return u.href;
    }

    function closeSocket() {
        if (state.ws) {
            var ws = state.ws;
            state.ws = null;
            ws.onclose = ws.onmessage = ws.onerror = null;
            try { ws.close(1000); } catch (e) { /* already closed */ }
        }
    }

    function subscribe() {
        var topic = currentTopic();
        if (!topic) {
            log('subscribe: no topic (log in or type one)', 'error');
            return Promise.resolve(false);
        }
        closeSocket();
        var form = {
            'hub.mode': 'subscribe',
            'hub.channel.type': 'websocket',
            'hub.topic': topic,
            'hub.events': $('events-filter').value.trim() || '*',
            'hub.lease_seconds': $('lease').value.trim() || '3600',
            'subscriber.name': subscriberName()
        };
        setState('socket-state', 'subscribing');
        return request('POST', cfg.hub, { form: form }).then(function (r) {
            var ep = r.json && r.json['hub.channel.endpoint'];
            if (!ok(r) || !ep) {
                setState('socket-state', 'failed');
                log('subscribe: ' + r.status + ' ' + reason(r), 'error');
                return false;
            }
            state.topic = topic;
            state.endpoint = ep;
            $('endpoint').textContent = ep;
            $('current-topic').textContent = topic;
            log('subscribed to ' + topic + ' (' + r.status + ')');
            openSocket(wsUrl(ep));
            return true;
        });
    }

    function openSocket(url) {
        var ws = new WebSocket(url);
        state.ws = ws;
        setState('socket-state', 'connecting');
        ws.onopen = function () {
            setState('socket-state', 'open');
            /* what every Cast client sends first; the hub ignores it */
            ws.send(JSON.stringify({ 'hub.channel.endpoint': url }));
        };
        ws.onmessage = function (m) {
            var msg;
            try {
                msg = JSON.parse(m.data);
            } catch (e) {
                log('socket: not JSON: ' + String(m.data).slice(0, 100),
                    'error');
                return;
            }
            onMessage(msg);
        };
        ws.onerror = function () {
            log('socket error', 'error');
        };
        ws.onclose = function (e) {
            if (state.ws === ws) {
                state.ws = null;
            }
            setState('socket-state', 'closed ' + e.code);
            log('socket closed: ' + e.code + (e.reason ? ' ' + e.reason : ''),
                e.code === 1000 ? 'info' : 'error');
        };
    }

    function onMessage(msg) {
        if (msg && msg.event && typeof msg.event === 'object') {
            addEvent(msg);
            return;
        }
        if (msg && msg.type === 'connection.established') {
            log('socket: connection established');
            return;
        }
        if (msg && msg['hub.mode'] === 'subscribe') {
            setState('socket-state', 'subscribed');
            log('socket: subscription confirmed for ' + msg['hub.topic']
                + ' (' + msg['hub.events'] + ')');
            return;
        }
        if (msg && msg['hub.mode'] === 'denied') {
            setState('socket-state', 'denied');
            log('socket: denied: ' + msg['hub.reason'], 'error');
            return;
        }
        if (msg && msg.type === 'ping') {
            return;
        }
        if (msg && msg.error) {
            log('socket: error ' + msg.error, 'error');
            return;
        }
        log('socket: ' + JSON.stringify(msg).slice(0, 200));
    }

    function addEvent(msg) {
        var ev = msg.event;
        var name = String(ev['hub.event'] || '');
        var topic = String(ev['hub.topic'] || '');
        var id = msg.id === undefined ? '' : String(msg.id);
        var li = document.createElement('li');

        li.setAttribute('data-event', name);
        li.setAttribute('data-topic', topic);
        li.setAttribute('data-id', id);
        li.className = (state.published[id] ? 'own ' : '')
                       + (topic !== state.topic ? 'other-topic ' : '')
                       + (/^conference-/i.test(name) ? 'conference' : '');

        function cell(cls, text) {
            var s = document.createElement('span');
            s.className = cls;
            s.textContent = text;
            li.appendChild(s);
        }
        cell('time', now());
        cell('name', name);
        cell('topic', topic);
        cell('id', id);

        var details = document.createElement('details');
        var summary = document.createElement('summary');
        summary.textContent = JSON.stringify(ev.context === undefined
                                             ? msg : ev.context);
        var pre = document.createElement('pre');
        pre.textContent = JSON.stringify(msg, null, 2);
        details.appendChild(summary);
        details.appendChild(pre);
        li.appendChild(details);

        if (/^conference-(start|lead)$/i.test(name) && ev.context
            && typeof ev.context === 'object')
        {
            $('current-conference').textContent =
                (ev.context.title || '?') + ' (host '
                + (ev.context.hostTopic || topic) + ')';
        } else if (/^conference-end$/i.test(name)
                   && !(ev.context && ev.context.leaveTopic
                        && ev.context.leaveTopic !== state.topic))
        {
            /* ended, or this topic left (another's leaving is not an end) */
            $('current-conference').textContent = '-';
        }

        $('events').insertBefore(li, $('events').firstChild);
        trimList($('events'), MAX_EVENTS);
        state.received++;
    }

    function unsubscribe() {
        if (!state.endpoint) {
            log('unsubscribe: not subscribed', 'error');
            return Promise.resolve(false);
        }
        var form = {
            'hub.mode': 'unsubscribe',
            'hub.channel.type': 'websocket',
            'hub.topic': state.topic,
            'hub.events': $('events-filter').value.trim() || '*',
            'hub.channel.endpoint': state.endpoint
        };
        return request('POST', cfg.hub, { form: form }).then(function (r) {
            log('unsubscribe: ' + r.status + (ok(r) ? '' : ' ' + reason(r)),
                ok(r) ? 'info' : 'error');
            if (ok(r)) {
                state.endpoint = '';
                $('endpoint').textContent = '';
            }
            return ok(r);
        });
    }

    /* ---- 3. publish ----------------------------------------------------- */

    var PATIENT = {
        resourceType: 'Patient',
        id: 'PID123',
        identifier: [{ system: 'urn:oid:2.16.840.1.113883.4.2',
                       value: 'PID123' }],
        name: [{ text: 'DOE^JOHN' }]
    };
    var STUDY_UID = '1.2.840.113619.2.55.3.604688119.969.1268071029.320';

    function context(kind) {
        if (kind === 'patient-open') {
            return [{ key: 'patient', resource: PATIENT }];
        }
        if (kind === 'imagingstudy-open') {
            return [
                { key: 'patient', resource: PATIENT },
                { key: 'study', resource: {
                    resourceType: 'ImagingStudy',
                    id: STUDY_UID,
                    uid: 'urn:oid:' + STUDY_UID,
                    identifier: [{ system: 'urn:oid:2.16.840.1.113883.4.2',
                                   value: 'ACC42' }],
                    patient: { reference: 'Patient/PID123' },
                    status: 'available'
                } }
            ];
        }
        /* annotation-update, the shape of the OHIF client's ArrowAnnotate */
        var uid = uuid();
        var imageId = 'wadors:/dicomweb/studies/' + STUDY_UID
                      + '/series/' + STUDY_UID + '.1/instances/'
                      + STUDY_UID + '.1.1/frames/1';
        return [{ key: 'annotation', resource: {
            resourceType: 'Annotation',
            uid: uid,
            data: {
                handles: {
                    points: [[-12.5, 40.2, 88.0], [10.1, 22.7, 88.0]],
                    activeHandleIndex: null,
                    arrowFirst: true
                },
                text: 'lesion, 14 mm',
                label: 'lesion, 14 mm',
                frameNumber: 1
            },
            metadata: {
                toolName: 'ArrowAnnotate',
                referencedImageId: imageId,
                FrameOfReferenceUID: STUDY_UID + '.9',
                viewPlaneNormal: [0, 0, -1],
                viewUp: [0, -1, 0]
            },
            measurement: {
                uid: uid,
                SOPInstanceUID: STUDY_UID + '.1.1',
                referenceStudyUID: STUDY_UID,
                referenceSeriesUID: STUDY_UID + '.1',
                frameNumber: 1,
                toolName: 'ArrowAnnotate',
                label: 'lesion, 14 mm',
                displayText: ['lesion, 14 mm'],
                points: [[-12.5, 40.2, 88.0], [10.1, 22.7, 88.0]],
                type: 'value_type::point',
                modifiedTimestamp: Math.floor(Date.now() / 1000),
                referencedImageId: imageId
            }
        } }];
    }

    function publish(kind) {
        var topic = state.topic || currentTopic();
        if (!topic) {
            log('publish: no topic', 'error');
            return Promise.resolve(false);
        }
        var id = 'DEMO-' + randomHex(8);
        var body = {
            timestamp: new Date().toJSON(),
            id: id,
            'subscriber.name': subscriberName(),
            event: {
                'hub.topic': topic,
                'hub.event': kind,
                context: context(kind)
            }
        };
        state.published[id] = true;
        state.publishedOrder.push(id);
        if (state.publishedOrder.length > MAX_EVENTS) {
            delete state.published[state.publishedOrder.shift()];
        }
        $('last-published').textContent = id;
        $('last-published').setAttribute('data-id', id);
        $('last-published').setAttribute('data-event', kind);
        return request('POST', cfg.hub, { json: body }).then(function (r) {
            $('publish-result').textContent = String(r.status);
            $('publish-result').setAttribute('data-status', String(r.status));
            log('publish ' + kind + ' ' + id + ': ' + r.status
                + (ok(r) ? '' : ' ' + reason(r)), ok(r) ? 'info' : 'error');
            return ok(r);
        });
    }

    /* ---- 4. conferences ------------------------------------------------- */

    function confResult(r, what) {
        $('conf-result').textContent = what + ': ' + r.status
                                       + (ok(r) ? '' : ' ' + reason(r));
        $('conf-result').setAttribute('data-status', String(r.status));
        $('conf-result').setAttribute('data-action', what);
        log('conference ' + what + ': ' + r.status
            + (ok(r) ? '' : ' ' + reason(r)), ok(r) ? 'info' : 'error');
    }

    function startConference() {
        var host = state.topic || currentTopic();
        var topics = $('conf-topics').value.split(/[\s,]+/).filter(
            function (t) { return t !== '' && t !== host; });
        if (!host || topics.length === 0) {
            log('conference: needs your topic and another topic', 'error');
            return Promise.resolve(false);
        }
        var body = {
            hostTopic: host,
            title: $('conf-title').value.trim() || 'Conference',
            topics: topics
        };
        return request('POST', cfg.hub + '/conference', { json: body })
        .then(function (r) {
            confResult(r, 'start');
            return ok(r) ? listConferences().then(function () { return true; })
                         : false;
        });
    }

    function listConferences() {
        return request('GET', cfg.hub + '/conference').then(function (r) {
            var ul = $('conferences');
            ul.textContent = '';
            if (!ok(r) || !Array.isArray(r.json)) {
                var bad = document.createElement('li');
                bad.className = 'error';
                bad.textContent = 'list: ' + r.status + ' '
                                  + (ok(r) ? 'not a list' : reason(r));
                ul.appendChild(bad);
                ul.setAttribute('data-count', '');
                log('conference list: ' + r.status + ' ' + bad.textContent,
                    'error');
                return false;
            }
            r.json.forEach(function (c) {
                var li = document.createElement('li');
                var host = c.hostTopic || c.user || '';
                li.setAttribute('data-host', host);
                li.setAttribute('data-topics', (c.topics || []).join(','));
                li.textContent = (c.title || '(no title)') + ' - host ' + host
                    + ', topics ' + (c.topics || []).join(', ')
                    + (c.sceneLeaderTopic ? ', leader ' + c.sceneLeaderTopic
                                          : '')
                    + (c.participants ? ', participants '
                       + [].concat(c.participants).join(', ') : '');
                ul.appendChild(li);
            });
            if (r.json.length === 0) {
                var none = document.createElement('li');
                none.className = 'none';
                none.textContent = 'no conferences';
                ul.appendChild(none);
            }
            $('conferences').setAttribute('data-count', String(r.json.length));
            return true;
        });
    }

    function endConference() {
        var host = state.topic || currentTopic();
        return request('DELETE', cfg.hub + '/conference',
                       { json: { hostTopic: host } })
        .then(function (r) {
            confResult(r, 'end');
            return listConferences().then(function () { return ok(r); });
        });
    }

    /* ---- wiring --------------------------------------------------------- */

    function on(id, fn) {
        $(id).addEventListener('click', function () { fn(); });
    }

    function init() {
        if (cfg.name) { $('client-name').value = cfg.name; }
        if (cfg.topic) { $('login-topic').value = cfg.topic; }
        if (cfg.events) { $('events-filter').value = cfg.events; }
        if (cfg.lease) { $('lease').value = cfg.lease; }

        on('login', login);
        on('subscribe', subscribe);
        on('unsubscribe', unsubscribe);
        on('publish-patient', function () { return publish('patient-open'); });
        on('publish-study', function () {
            return publish('imagingstudy-open');
        });
        on('publish-annotation', function () {
            return publish('annotation-update');
        });
        on('conf-start', startConference);
        on('conf-list', listConferences);
        on('conf-end', endConference);
        on('events-clear', function () { $('events').textContent = ''; });

        window.addEventListener('beforeunload', closeSocket);
        log('hub ' + cfg.hub + ', token endpoint ' + cfg.token);
        document.body.setAttribute('data-ready', '1');
    }

    /* for the console and the browser test */
    window.castDemo = {
        cfg: cfg, state: state, login: login, subscribe: subscribe,
        unsubscribe: unsubscribe, publish: publish,
        startConference: startConference, listConferences: listConferences,
        endConference: endConference
    };

    init();
}());
