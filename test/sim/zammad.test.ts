import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ZammadDouble, type ZammadDoubleOptions } from '@freeswitch-zammad-cti/sim/zammad';

// ---------------------------------------------------------------------------------------------
// helpers

interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

type Fields = Record<string, string | string[]>;

function form(fields: Fields): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) {
    if (Array.isArray(v)) for (const x of v) q.append(`${k}[]`, x);
    else q.append(k, v);
  }
  return q.toString();
}

/** A raw POST with full control over the headers (fetch always adds Accept: *∕*). */
function httpPost(
  url: string,
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  opts: { method?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.timeoutMs !== undefined) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.end(body);
  });
}

function post(z: ZammadDouble, fields: Fields, headers?: Record<string, string>): Promise<HttpResult> {
  return httpPost(z.url, form(fields), headers);
}

async function postJson(z: ZammadDouble, fields: Fields): Promise<{ status: number; body: unknown }> {
  const r = await post(z, fields);
  return { status: r.status, body: JSON.parse(r.body) as unknown };
}

const IN = { direction: 'in', from: '493055571600', to: '491711234567890' } as const;
const OUT = { direction: 'out', from: '491711234567890', to: '493055571600' } as const;

class Clock {
  t = Date.UTC(2025, 0, 1, 12, 0, 0);
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

function double(opts: Partial<ZammadDoubleOptions> = {}): ZammadDouble {
  return new ZammadDouble({ token: 'tok', ...opts });
}

// ---------------------------------------------------------------------------------------------

describe('ZammadDouble: requests and checks', () => {
  const z = double();
  before(() => z.start());
  after(() => z.stop());
  beforeEach(() => {
    z.reset();
    z.update({ enabled: true, configured: true, token: 'tok' });
  });

  it('exposes url and baseUrl', () => {
    assert.match(z.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(z.url, `${z.baseUrl}/api/v1/cti/tok`);
  });

  it('accepts a form-encoded newCall, user[] repeated → array, joined ", " in the log', async () => {
    const r = await post(z, { event: 'newCall', ...IN, callId: 'c1', user: ['Alice', 'Bob'] });
    assert.equal(r.status, 200);
    assert.equal(r.body, '{}');
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const p = z.posts[0];
    assert.ok(p);
    assert.deepEqual(p.params.user, ['Alice', 'Bob']);
    assert.equal(p.event, 'newCall');
    assert.equal(p.callId, 'c1');
    assert.equal(p.token, 'tok');
    assert.equal(p.accept, 'application/json');
    assert.equal(p.contentType, 'application/x-www-form-urlencoded');
    assert.equal(p.status, 200);
    assert.equal(p.reply, '{}');
    const e = z.entry('c1');
    assert.ok(e);
    assert.equal(e.direction, 'in');
    assert.equal(e.state, 'newCall');
    assert.equal(e.done, false);
    assert.equal(e.users, 'Alice, Bob');
    assert.equal(e.toComment, 'Alice, Bob');
    assert.equal(e.from, '493055571600');
    assert.equal(e.queue, '491711234567890');
  });

  it('accepts a JSON body, and call_id as fallback for callId', async () => {
    const r = await httpPost(z.url, JSON.stringify({ event: 'newCall', ...OUT, call_id: 'c2', user: 'Carol' }), {
      'content-type': 'application/json',
      accept: 'application/json',
    });
    assert.equal(r.status, 200);
    const e = z.entry('c2');
    assert.ok(e);
    assert.equal(e.direction, 'out');
    assert.equal(e.done, true, 'outbound newCall is done');
    assert.equal(e.fromComment, 'Carol');
    assert.equal(z.posts[0]?.callId, 'c2');
  });

  it('checks in order: disabled → not configured → token → direction → event', async () => {
    const bad = { event: 'bogus' }; // no direction either
    z.update({ enabled: false, configured: false });
    let r = await httpPost(`${z.baseUrl}/api/v1/cti/wrong`, form(bad));
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), { error: 'Feature is disabled, please contact your administrator!' });

    z.update({ enabled: true });
    r = await httpPost(`${z.baseUrl}/api/v1/cti/wrong`, form(bad));
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), { error: 'Feature not configured, please contact your admin!' });

    z.update({ configured: true });
    r = await httpPost(`${z.baseUrl}/api/v1/cti/wrong`, form(bad));
    assert.equal(r.status, 401);
    assert.deepEqual(JSON.parse(r.body), { error: 'Invalid token, please contact your admin!' });

    r = await post(z, bad);
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), { error: 'Invalid direction!' });

    r = await post(z, { event: 'newCall', direction: 'inbound', callId: 'x', from: '1', to: '2' });
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), { error: 'Invalid direction!' });

    r = await post(z, { event: 'ringing', ...IN, callId: 'x' });
    assert.equal(r.status, 422);
    assert.match(
      (JSON.parse(r.body) as { error: string }).error,
      /^Error ID [\w-]{8}: Please contact your administrator\.$/,
    );

    assert.deepEqual(z.log(), [], 'nothing stored by rejected requests');
    assert.deepEqual(
      z.posts.map((p) => p.status),
      [422, 422, 401, 422, 422, 422],
      'rejected requests are recorded too',
    );
  });

  it('a valid token without direction is a side-effect-free token test', async () => {
    const r = await post(z, {});
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), { error: 'Invalid direction!' });
    assert.equal(z.log().length, 0);
  });

  it('direction is required on answer and hangup too', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'd1' });
    const r = await post(z, { event: 'hangup', callId: 'd1', cause: 'cancel' });
    assert.equal(r.status, 422);
    assert.equal(z.entry('d1')?.state, 'newCall');
  });

  it('a second newCall for the same call id → 500 "This object already exists." and the first stays', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'dup', user: 'A' });
    const r = await post(z, { event: 'newCall', ...IN, callId: 'dup', user: 'B' });
    assert.equal(r.status, 500);
    assert.deepEqual(JSON.parse(r.body), {
      error: 'This object already exists.',
      error_human: 'This object already exists.',
    });
    assert.equal(z.log().length, 1);
    assert.equal(z.entry('dup')?.users, 'A');
  });

  it('answer / hangup for an unknown call id → 500', async () => {
    for (const event of ['answer', 'hangup']) {
      const r = await post(z, { event, ...IN, callId: 'nope' });
      assert.equal(r.status, 500);
      assert.match(
        (JSON.parse(r.body) as { error: string }).error,
        /^Error ID .{8}: Please contact your administrator\.$/,
      );
    }
    assert.equal(z.log().length, 0);
  });

  it('newCall without call id → 422 Attribute required', async () => {
    const r = await post(z, { event: 'newCall', ...IN });
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), {
      error: "Attribute 'call_id' required!",
      error_human: "Attribute 'call_id' required!",
    });
  });

  it('without Accept: application/json unexpected errors come back as an HTML page', async () => {
    let r = await httpPost(z.url, form({ event: 'hangup', ...IN, callId: 'nope' }), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(r.status, 500);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(r.body, /<title>500: Something went wrong<\/title>/);
    assert.throws(() => JSON.parse(r.body) as unknown);

    // strict (default): */* is not enough
    r = await httpPost(z.url, form({ event: 'answer', ...IN, callId: 'nope' }), {
      'content-type': 'application/x-www-form-urlencoded',
      accept: '*/*',
    });
    assert.match(String(r.headers['content-type']), /^text\/html/);

    // unknown event (ArgumentError) → the 422 page
    r = await httpPost(z.url, form({ event: 'bogus', ...IN, callId: 'x' }), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(r.status, 422);
    assert.match(r.body, /422: The change you wanted was rejected/);

    // controller-rendered errors stay JSON whatever Accept says
    r = await httpPost(z.url, form({ event: 'newCall' }), { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), { error: 'Invalid direction!' });
    assert.equal(z.posts[0]?.accept, undefined);
  });

  it("acceptNegotiation 'rails': a lone */* gets JSON, a browser-like Accept gets HTML", async () => {
    z.update({ acceptNegotiation: 'rails' });
    try {
      let r = await httpPost(z.url, form({ event: 'hangup', ...IN, callId: 'nope' }), {
        'content-type': 'application/x-www-form-urlencoded',
        accept: '*/*',
      });
      assert.match(String(r.headers['content-type']), /^application\/json/);
      r = await httpPost(z.url, form({ event: 'hangup', ...IN, callId: 'nope' }), {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'text/html, */*',
      });
      assert.match(String(r.headers['content-type']), /^text\/html/);
    } finally {
      z.update({ acceptNegotiation: 'strict' });
    }
  });

  it('unknown paths and methods → 404', async () => {
    let r = await httpPost(`${z.baseUrl}/api/v1/cti`, form({ event: 'newCall', ...IN, callId: 'x' }));
    assert.equal(r.status, 404);
    r = await httpPost(z.url, '', { accept: 'application/json' }, { method: 'GET' });
    assert.equal(r.status, 404);
    assert.equal(z.log().length, 0);
    assert.equal(z.posts.length, 2);
  });

  it('cuts callId at 250 and from/to at 100; later events with the full id are unknown', async () => {
    const long = 'x'.repeat(300);
    const num = '4'.repeat(120);
    let r = await post(z, { event: 'newCall', direction: 'in', from: num, to: num, callId: long });
    assert.equal(r.status, 200);
    const e = z.entry(long.slice(0, 250));
    assert.ok(e);
    assert.equal(e.from, num.slice(0, 100));
    assert.equal(e.to, num.slice(0, 100));
    r = await post(z, { event: 'hangup', ...IN, callId: long, cause: 'cancel' });
    assert.equal(r.status, 500);
    // a second long id that cuts to the same stored id collides with it
    r = await post(z, { event: 'newCall', ...IN, callId: `${long}y` });
    assert.equal(r.status, 500);
    assert.equal(JSON.parse(r.body).error, 'This object already exists.');
  });
});

describe('ZammadDouble: call state (Cti::Log)', () => {
  const clock = new Clock();
  const z = double({ now: clock.now });
  before(() => z.start());
  after(() => z.stop());
  beforeEach(() => z.reset());

  it('answered inbound call: answer sets start, hangup sets end and times; done', async () => {
    const t0 = clock.t;
    await post(z, { event: 'newCall', ...IN, callId: 'a1', user: ['Alice', 'Bob'] });
    clock.advance(3000);
    assert.equal(
      (await post(z, { event: 'answer', ...IN, callId: 'a1', user: 'Alice', answeringNumber: '4921199999999' })).status,
      200,
    );
    let e = z.entry('a1');
    assert.ok(e);
    assert.equal(e.state, 'answer');
    assert.equal(e.done, true);
    assert.equal(e.startAt, t0 + 3000);
    assert.equal(e.durationWaitingTime, 3);
    assert.equal(e.answeredBy, 'Alice');
    assert.equal(e.toComment, 'Alice');
    assert.equal(e.answeringNumber, '4921199999999');
    clock.advance(10_000);
    await post(z, { event: 'hangup', ...IN, callId: 'a1', cause: 'normalClearing' });
    e = z.entry('a1');
    assert.ok(e);
    assert.equal(e.state, 'hangup');
    assert.equal(e.done, true);
    assert.equal(e.endAt, t0 + 13_000);
    assert.equal(e.durationTalkingTime, 10);
    assert.equal(e.cause, 'normalClearing');
    assert.equal(e.hangups, 1);
    assert.deepEqual(z.acceptedEvents('a1'), ['newCall', 'answer', 'hangup']);
  });

  it('inbound hung up in newCall state is missed (not done), unless cause forwarded', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'm1' });
    clock.advance(5000);
    await post(z, { event: 'hangup', ...IN, callId: 'm1', cause: 'cancel' });
    const e = z.entry('m1');
    assert.equal(e?.done, false);
    assert.equal(e?.state, 'hangup');
    assert.equal(e?.durationWaitingTime, 5);
    assert.equal(e?.startAt, undefined);

    await post(z, { event: 'newCall', ...IN, callId: 'f1' });
    await post(z, { event: 'hangup', ...IN, callId: 'f1', cause: 'forwarded' });
    assert.equal(z.entry('f1')?.done, true);
  });

  it('outbound hangup without answer is done', async () => {
    await post(z, { event: 'newCall', ...OUT, callId: 'o1', user: 'Alice' });
    await post(z, { event: 'hangup', ...OUT, callId: 'o1', cause: 'noAnswer' });
    assert.equal(z.entry('o1')?.done, true);
  });

  it('answered by voicemail stays not done after hangup', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'v1', user: 'Alice' });
    await post(z, { event: 'answer', ...IN, callId: 'v1', user: 'voicemail' });
    assert.equal(z.entry('v1')?.done, true);
    await post(z, { event: 'hangup', ...IN, callId: 'v1', cause: 'normalClearing' });
    assert.equal(z.entry('v1')?.done, false);
  });

  it('answer after hangup is ignored with 200 {}', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'h1' });
    await post(z, { event: 'hangup', ...IN, callId: 'h1', cause: 'cancel' });
    const r = await post(z, { event: 'answer', ...IN, callId: 'h1', user: 'Alice' });
    assert.equal(r.status, 200);
    assert.equal(r.body, '{}');
    const e = z.entry('h1');
    assert.equal(e?.state, 'hangup');
    assert.equal(e?.done, false);
    assert.equal(e?.answers, 0);
    assert.equal(e?.ignoredAnswers, 1);
    assert.equal(e?.startAt, undefined);
  });

  it('a repeated answer resets the start time', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'r1' });
    clock.advance(1000);
    await post(z, { event: 'answer', ...IN, callId: 'r1', user: 'Alice' });
    const first = z.entry('r1')?.startAt;
    clock.advance(7000);
    await post(z, { event: 'answer', ...IN, callId: 'r1', user: 'Alice' });
    const e = z.entry('r1');
    assert.equal(e?.startAt, (first ?? 0) + 7000);
    assert.equal(e?.answers, 2);
  });

  it('a repeated hangup marks a missed call done and moves its end time', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'rh' });
    await post(z, { event: 'hangup', ...IN, callId: 'rh', cause: 'cancel' });
    const e1 = z.entry('rh');
    assert.equal(e1?.done, false);
    clock.advance(4000);
    assert.equal((await post(z, { event: 'hangup', ...IN, callId: 'rh', cause: 'cancel' })).status, 200);
    const e2 = z.entry('rh');
    assert.equal(e2?.done, true, 'the missed call is no longer shown as missed');
    assert.equal(e2?.endAt, (e1?.endAt ?? 0) + 4000);
    assert.equal(e2?.hangups, 2);
  });

  it('user[] array on an inbound answer → 500 after the answer was stored', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'ua' });
    const r = await post(z, { event: 'answer', ...IN, callId: 'ua', user: ['Alice', 'Bob'] });
    assert.equal(r.status, 500);
    const e = z.entry('ua');
    assert.equal(e?.state, 'answer');
    assert.equal(e?.done, true);
    assert.equal(e?.answeredBy, 'Alice, Bob');
    // a string user is fine
    await post(z, { event: 'newCall', ...IN, callId: 'us' });
    assert.equal((await post(z, { event: 'answer', ...IN, callId: 'us', user: 'Alice' })).status, 200);
    // outbound answers do not open a ticket screen: no error
    await post(z, { event: 'newCall', ...OUT, callId: 'uo' });
    assert.equal((await post(z, { event: 'answer', ...OUT, callId: 'uo', user: ['Alice'] })).status, 200);
  });

  it('log() returns copies in creation order', async () => {
    await post(z, { event: 'newCall', ...IN, callId: 'l1' });
    await post(z, { event: 'newCall', ...OUT, callId: 'l2' });
    const l = z.log();
    assert.deepEqual(
      l.map((e) => [e.id, e.callId]),
      [
        [1, 'l1'],
        [2, 'l2'],
      ],
    );
    const first = l[0];
    assert.ok(first);
    first.done = true;
    assert.equal(z.entry('l1')?.done, false);
  });
});

describe('ZammadDouble: replies (reject, dial)', () => {
  const z = double({
    blockedNumbers: ['491715000000'],
    outboundRoutes: [
      { dest: '41*', callerId: '41715880339000' },
      { dest: '491714000000', callerId: '41715880339001' },
      { dest: '49*', callerId: '4930777000001' },
    ],
    defaultCallerId: '4930777000000',
  });
  before(() => z.start());
  after(() => z.stop());

  it('rejects an inbound newCall from a blocked number (exact match only) and still stores it', async () => {
    assert.deepEqual(
      await postJson(z, { event: 'newCall', direction: 'in', from: '491715000000', to: '4930600000000', callId: 'b1' }),
      {
        status: 200,
        body: { action: 'reject', reason: 'busy' },
      },
    );
    assert.equal(z.entry('b1')?.state, 'newCall');
    assert.equal(z.entry('b1')?.done, false);
    for (const from of ['+491715000000', '4917150000001', '1715000000']) {
      const r = await postJson(z, {
        event: 'newCall',
        direction: 'in',
        from,
        to: '4930600000000',
        callId: `b-${from}`,
      });
      assert.deepEqual(r.body, {}, from);
    }
    // only on newCall and only inbound
    assert.deepEqual(
      (await postJson(z, { event: 'hangup', direction: 'in', from: '491715000000', callId: 'b1', cause: 'busy' })).body,
      {},
    );
  });

  it(
    'routes outbound newCall: first match wins, ' + '* is one or more chars, else default; number = to as sent',
    async () => {
      const cases: [string, string][] = [
        ['4147110000000', '41715880339000'],
        ['491714000000', '41715880339001'],
        ['4912347114711', '4930777000001'],
        ['49', '4930777000000'], // 49* needs at least one more char → default
        ['3312345', '4930777000000'],
      ];
      let i = 0;
      for (const [to, callerId] of cases) {
        const callId = `o${i++}`;
        const r = await postJson(z, {
          event: 'newCall',
          direction: 'out',
          from: '4930600000000',
          to,
          callId,
          user: 'Alice',
        });
        assert.deepEqual(r.body, { action: 'dial', caller_id: callerId, number: to }, to);
        // Zammad stores the chosen caller id as `from`
        assert.equal(z.entry(callId)?.from, callerId);
        assert.equal(z.entry(callId)?.queue, callerId);
      }
      // no dial on other events
      assert.deepEqual(
        (await postJson(z, { event: 'hangup', direction: 'out', to: '4147110000000', callId: 'o0', cause: 'cancel' }))
          .body,
        {},
      );
    },
  );

  it('dialKey callerId; no routes and no default → {}', async () => {
    const z2 = double({ dialKey: 'callerId', outboundRoutes: [{ dest: '49*', callerId: '4930' }] });
    await z2.start();
    try {
      assert.deepEqual((await postJson(z2, { event: 'newCall', ...OUT, callId: 'k1' })).body, {
        action: 'dial',
        callerId: '4930',
        number: OUT.to,
      });
      assert.deepEqual(
        (await postJson(z2, { event: 'newCall', direction: 'out', from: '1', to: '3312345', callId: 'k2' })).body,
        {},
      );
      assert.equal(z2.entry('k2')?.from, '1');
    } finally {
      await z2.stop();
    }
  });
});

describe('ZammadDouble: faults', () => {
  const z = double();
  before(() => z.start());
  after(() => z.stop());
  beforeEach(() => {
    z.reset();
    z.clearFault();
  });

  it('status fault for the next N requests; not processed', async () => {
    z.setFault({ kind: 'status', status: 503, headers: { 'Retry-After': '1' } }, { times: 2 });
    let r = await post(z, { event: 'newCall', ...IN, callId: 's1' });
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.match(r.body, /503 Service Unavailable/);
    assert.equal(z.faultsPending, 1);
    r = await post(z, { event: 'newCall', ...IN, callId: 's1' });
    assert.equal(r.status, 503);
    assert.equal(z.entry('s1'), undefined);
    r = await post(z, { event: 'newCall', ...IN, callId: 's1' });
    assert.equal(r.status, 200);
    assert.deepEqual(
      z.posts.map((p) => [p.fault, p.status]),
      [
        ['status', 503],
        ['status', 503],
        [undefined, 200],
      ],
    );
  });

  it('status fault with an HTML 500 page, processed first (stored but reply lost)', async () => {
    z.setFault({ kind: 'status', status: 500, body: '<html>boom</html>', process: true }, { times: 1 });
    const r = await post(z, { event: 'newCall', ...IN, callId: 'p1' });
    assert.equal(r.status, 500);
    assert.equal(r.body, '<html>boom</html>');
    assert.ok(z.entry('p1'));
    // the retry meets the real Zammad answer
    assert.equal((await post(z, { event: 'newCall', ...IN, callId: 'p1' })).status, 500);
  });

  it('faults can target some events only, until cleared', async () => {
    z.setFault({ kind: 'status', status: 502 }, { events: ['hangup'] });
    assert.equal((await post(z, { event: 'newCall', ...IN, callId: 'e1' })).status, 200);
    assert.equal((await post(z, { event: 'hangup', ...IN, callId: 'e1' })).status, 502);
    assert.equal((await post(z, { event: 'hangup', ...IN, callId: 'e1' })).status, 502);
    assert.equal(z.faultsPending, Infinity);
    z.setFault({ kind: 'none' });
    assert.equal((await post(z, { event: 'hangup', ...IN, callId: 'e1' })).status, 200);
  });

  it('delay: stored at once, answered after ms', async () => {
    z.setFault({ kind: 'delay', ms: 400 }, { times: 1 });
    const t0 = Date.now();
    const pending = post(z, { event: 'newCall', ...IN, callId: 'dl' });
    await z.waitFor((d) => d.entry('dl') !== undefined, 1000);
    assert.equal(z.posts[0]?.status, 0, 'stored, reply not sent yet');
    const r = await pending;
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 390);
    assert.equal(z.posts[0]?.status, 200);
  });

  it('delay with process=last: stored only when the reply goes out', async () => {
    z.setFault({ kind: 'delay', ms: 200, process: 'last' }, { times: 1 });
    const pending = post(z, { event: 'newCall', ...IN, callId: 'dl2' });
    await z.waitFor((d) => d.posts.length === 1);
    assert.equal(z.entry('dl2'), undefined);
    assert.equal((await pending).status, 200);
    assert.ok(z.entry('dl2'));
  });

  it('hang: never answers (client times out)', async () => {
    z.setFault({ kind: 'hang' }, { times: 1 });
    await assert.rejects(
      httpPost(z.url, form({ event: 'newCall', ...IN, callId: 'hg' }), undefined, { timeoutMs: 200 }),
      /client timeout/,
    );
    assert.equal(z.posts[0]?.status, 0);
    assert.equal(z.entry('hg'), undefined);
  });

  it('reset: connection reset without an answer (process=true stores first)', async () => {
    z.setFault({ kind: 'reset', process: true }, { times: 1 });
    await assert.rejects(post(z, { event: 'newCall', ...IN, callId: 'rs' }), (err: NodeJS.ErrnoException) => {
      assert.ok(err.code === 'ECONNRESET' || /socket hang up/.test(err.message), err.message);
      return true;
    });
    assert.ok(z.entry('rs'));
    assert.equal(z.posts[0]?.status, 0);
  });

  it('hugeBody: 200 with an enormous (still valid JSON) body', async () => {
    z.setFault({ kind: 'hugeBody', bytes: 5 * 1024 * 1024 }, { times: 1 });
    const r = await post(z, { event: 'newCall', ...IN, callId: 'hb' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(5 * 1024 * 1024));
    assert.equal(Buffer.byteLength(r.body), 5 * 1024 * 1024);
    assert.deepEqual(JSON.parse(r.body), {});
    assert.ok(z.entry('hb'));
  });

  it('neverEndingBody: headers arrive, the body never ends', async () => {
    z.setFault({ kind: 'neverEndingBody', intervalMs: 20 }, { times: 1 });
    const got = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const req = request(
        z.url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          agent: false,
        },
        (res) => {
          let bytes = 0;
          let ended = false;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => (ended = true));
          res.on('error', () => undefined);
          setTimeout(() => {
            req.destroy();
            if (ended) reject(new Error('body ended'));
            else resolve({ status: res.statusCode ?? 0, bytes });
          }, 300);
        },
      );
      req.on('error', () => undefined);
      req.end(form({ event: 'newCall', ...IN, callId: 'ne' }));
    });
    assert.equal(got.status, 200);
    assert.ok(got.bytes > 3, `trickled ${got.bytes} bytes`);
    assert.ok(z.entry('ne'));
  });

  it('redirect: 302 with Location, not processed', async () => {
    z.setFault({ kind: 'redirect', location: 'https://zammad.example/api/v1/cti/tok' }, { times: 1 });
    const r = await post(z, { event: 'newCall', ...IN, callId: 'rd' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'https://zammad.example/api/v1/cti/tok');
    assert.equal(z.entry('rd'), undefined);
  });
});

describe('ZammadDouble: lifecycle', () => {
  it('refuseConnections / acceptConnections on the same port; the log survives', async () => {
    const z = double();
    await z.start();
    try {
      const url = z.url;
      await post(z, { event: 'newCall', ...IN, callId: 'lc' });
      await z.refuseConnections();
      await assert.rejects(
        httpPost(url, form({ event: 'hangup', ...IN, callId: 'lc' })),
        (err: NodeJS.ErrnoException) => {
          assert.equal(err.code, 'ECONNREFUSED');
          return true;
        },
      );
      await z.acceptConnections();
      assert.equal(z.url, url);
      assert.equal((await httpPost(url, form({ event: 'hangup', ...IN, callId: 'lc', cause: 'cancel' }))).status, 200);
      assert.equal(z.entry('lc')?.state, 'hangup');
    } finally {
      await z.stop();
    }
  });

  it('refuseConnections drops a hanging request', async () => {
    const z = double();
    await z.start();
    try {
      z.setFault({ kind: 'hang' });
      const pending = post(z, { event: 'newCall', ...IN, callId: 'x' });
      await z.waitFor((d) => d.posts.length === 1);
      await z.refuseConnections();
      await assert.rejects(pending);
    } finally {
      await z.stop();
    }
  });

  it('stop() destroys hanging sockets and returns promptly', async () => {
    const z = double();
    await z.start();
    z.setFault({ kind: 'hang' });
    const pending = post(z, { event: 'newCall', ...IN, callId: 'x' });
    await z.waitFor((d) => d.posts.length === 1);
    const t0 = Date.now();
    await z.stop();
    assert.ok(Date.now() - t0 < 1000);
    await assert.rejects(pending);
  });

  it('waitFor rejects after its timeout', async () => {
    const z = double();
    await assert.rejects(
      z.waitFor(() => false, 50),
      /not met within 50 ms/,
    );
  });

  it('works with global fetch', async () => {
    const z = double();
    await z.start();
    try {
      const res = await fetch(z.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form({ event: 'newCall', ...IN, callId: 'ft', user: ['A'] }),
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      assert.deepEqual(z.posts[0]?.params.user, ['A']);
    } finally {
      await z.stop();
    }
  });
});
