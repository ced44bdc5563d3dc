import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/clock.js';
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import { rankOf } from '../../src/scenario/plan.js';
import { scenarioInput, toScenario } from '../../src/scenario/schema.js';
import { Stats } from '../../src/stats/stats.js';
import { autoAck, flush, MemBroker, type Responder } from './fakes/mem-broker.js';

function scenario(over: Record<string, unknown>) {
  return toScenario(scenarioInput.parse({ host: 'mqtt://mem', ...over }), 'r1');
}

async function drive(clock: FakeClock, totalMs: number, stepMs = 5): Promise<void> {
  // first the timers due right now (the first device's connect), so it connects at the start instant
  clock.advance(0);
  await flush();
  for (let t = 0; t < totalMs; t += stepMs) {
    clock.advance(stepMs);
    await flush();
  }
}

/** One engine over the in-memory broker in fake time: the setup every test here shares. */
function rig(
  over: Record<string, unknown>,
  o: { respond?: Responder; clock?: FakeClock; engine?: Partial<EngineOptions> } = {},
) {
  const clock = o.clock ?? new FakeClock();
  const broker = new MemBroker(o.respond);
  const stats = new Stats(clock.now());
  const s = scenario(over);
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats,
    clock,
    openTransport: broker.factory,
    ...o.engine,
  });
  return { clock, broker, stats, s, engine };
}

test('open model in fake time: every slot from connect to run end is sent on time, phases spread', async () => {
  const { clock, broker, stats, engine } = rig({
    devices: 10,
    spawnRate: 10,
    runTime: '2s',
    interval: '100ms',
    qos: 1,
  });
  engine.start();
  const start = clock.now();
  await drive(clock, 2500);
  // device i connects at start + its place in the join order × 100ms (the in-memory broker answers without time passing)
  let expected = 0;
  for (let i = 0; i < 10; i++) {
    const phase = ((i * 0.6180339887498949) % 1) * 100;
    for (let n = 0; ; n++) {
      const due = start + phase + n * 100;
      if (due >= start + 2000) break;
      if (due >= start + rankOf(10, i) * 100) expected++;
    }
  }
  assert.equal(stats.total.scheduled, expected);
  assert.equal(stats.total.sent, expected);
  assert.equal(stats.total.acked, expected);
  assert.equal(stats.total.skipped, 0);
  assert.ok(
    stats.hInterval.scheduleLag.maxValue <= 1000,
    'in fake time no message is later than one tick (1 ms: wake-ups are at most one per tick)',
  );
  const pubs = broker.packets.filter((p) => p.cmd === 'publish');
  assert.equal(pubs.length, expected);
  // seq per device runs 1..n without gaps; ts are the scheduled slot times, spread across the interval
  const byDev = new Map<string, number[]>();
  const phases = new Set<number>();
  for (const p of pubs) {
    if (p.cmd !== 'publish') continue;
    const m = JSON.parse(p.payload.toString()) as {
      deviceId: string;
      seq: number;
      ts: number;
      runId: string;
    };
    assert.equal(m.runId, 'r1');
    byDev.set(m.deviceId, [...(byDev.get(m.deviceId) ?? []), m.seq]);
    phases.add(Math.round(((m.ts - start) % 100) * 1000) / 1000);
  }
  for (const seqs of byDev.values())
    assert.deepEqual(
      seqs,
      seqs.map((_, k) => k + 1),
    );
  const sorted = [...phases].sort((a, b) => a - b);
  assert.equal(sorted.length, 10);
  const gaps = sorted.map((p, k) => ((sorted[(k + 1) % 10] as number) - p + 100) % 100);
  assert.ok(Math.max(...gaps) < 30, `phases spread over the interval, max gap ${Math.max(...gaps)} ms`);
  engine.stop();
});

test('a broker refusing CONNACK: failures counted by name, retried with backoff, nothing sent', async () => {
  const { clock, stats, engine } = rig(
    { devices: 2, spawnRate: 100, runTime: '3s', interval: '100ms' },
    {
      respond: (p, peer) => {
        if (p.cmd === 'connect') peer.send({ cmd: 'connack', returnCode: 5, sessionPresent: false });
      },
      engine: { random: () => 1, backoffBaseMs: 500 },
    },
  );
  engine.start();
  await drive(clock, 3000, 10);
  assert.equal(stats.total.sent, 0);
  assert.equal(engine.everConnected, 0);
  // attempts per device at 0, 0.5, 1.5 s (backoff 500·2^n with random()=1), then 3.5 s is past the end
  assert.equal(stats.total.connectFailures, 6);
  // and by device, for devices.csv
  assert.deepEqual([...engine.connectFailuresPerDevice()], [3, 3]);
  const [e] = stats.errors();
  assert.deepEqual(e, { kind: 'connack', code: 5, reason: 'not authorized', count: 6 });
  engine.stop();
});

test('QoS 2 completes PUBREC → PUBREL → PUBCOMP; a v5 PUBACK failure reason counts failed', async () => {
  for (const [qos, reason] of [
    [2, 0],
    [1, 0x87],
  ] as const) {
    const { clock, broker, stats, engine } = rig(
      { devices: 1, spawnRate: 1, runTime: '1s', interval: '250ms', qos, mqttVersion: '5' },
      {
        respond: (p, peer) => {
          if (p.cmd === 'publish' && p.qos === 1)
            peer.send({ cmd: 'puback', messageId: p.messageId ?? 0, reasonCode: reason });
          else autoAck(p, peer);
        },
      },
    );
    engine.start();
    await drive(clock, 1200);
    assert.equal(stats.total.sent, 4);
    if (qos === 2) {
      assert.equal(stats.total.acked, 4);
      assert.equal(broker.packets.filter((p) => p.cmd === 'pubrel').length, 4);
      // every packet written counts as bytes sent: CONNECT, PUBLISH and PUBREL alike
      assert.equal(engine.takeBytesSent(), broker.bytesIn);
    } else {
      assert.equal(stats.total.failed, 4);
      assert.equal(stats.errors()[0]?.reason, 'not authorized');
    }
    assert.equal(engine.inflight, 0);
    engine.stop();
  }
});

test('a dropped connection: in-flight messages fail, slots due while offline are skipped, the device reconnects, seq continues', async () => {
  const clock = new FakeClock();
  let drop = true;
  const broker = new MemBroker((p, peer) => {
    if (p.cmd === 'publish' && drop && p.qos === 1) {
      const m = JSON.parse(p.payload.toString()) as { seq: number };
      if (m.seq === 3) {
        drop = false;
        peer.close(); // no PUBACK for seq 3
        return;
      }
    }
    autoAck(p, peer);
  });
  const stats = new Stats(clock.now());
  const s = scenario({ devices: 1, spawnRate: 1, runTime: '3s', interval: '200ms', qos: 1 });
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats,
    clock,
    openTransport: broker.factory,
    random: () => 0.75,
    backoffBaseMs: 400, // seq 3 is due at 400 ms; reconnect after 0.75 × 400 = 300 ms, at 700 ms
  });
  engine.start();
  await drive(clock, 3200);
  assert.equal(stats.total.reconnects, 1);
  assert.equal(stats.total.failed, 1, 'seq 3 was in flight when the connection closed');
  // slots every 200 ms from 0 to 2800 ms: 15; the one at 600 ms fell while the device was offline (default: drop)
  assert.equal(stats.total.scheduled, 15);
  assert.equal(stats.total.skipped, 1, 'the slot due while offline is skipped, and only that one');
  assert.equal(stats.errors().find((e) => e.kind === 'offline')?.count, 1);
  assert.equal(stats.total.sent, 14);
  assert.equal(stats.total.scheduled, stats.total.sent + stats.total.skipped);
  assert.equal(stats.total.sent, stats.total.acked + stats.total.failed);
  const seqs = broker.packets.flatMap((p) =>
    p.cmd === 'publish' ? [(JSON.parse(p.payload.toString()) as { seq: number }).seq] : [],
  );
  assert.deepEqual(
    seqs,
    Array.from({ length: 14 }, (_, k) => k + 1),
    'seq never reused across the reconnect, and the skipped slot takes no seq',
  );
  engine.stop();
});

test('offline buffer: messages due while disconnected are sent as a burst on reconnect, with their scheduled ts', async () => {
  const clock = new FakeClock();
  let dropped = false;
  const broker = new MemBroker((p, peer) => {
    if (p.cmd === 'publish' && !dropped) {
      const m = JSON.parse(p.payload.toString()) as { seq: number };
      if (m.seq === 2) {
        dropped = true;
        autoAck(p, peer);
        peer.close();
        return;
      }
    }
    autoAck(p, peer);
  });
  const stats = new Stats(clock.now());
  const s = scenario({
    devices: 1,
    spawnRate: 1,
    runTime: '3s',
    interval: '100ms',
    qos: 1,
    offline: 'buffer',
  });
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats,
    clock,
    openTransport: broker.factory,
    random: () => 1,
    backoffBaseMs: 450, // offline from ~100 ms to ~550 ms: slots at 200..500 ms wait in the buffer
  });
  engine.start();
  await drive(clock, 3200);
  const pubs = broker.packets.flatMap((p) =>
    p.cmd === 'publish' ? [JSON.parse(p.payload.toString()) as { seq: number; ts: number }] : [],
  );
  assert.equal(stats.total.scheduled, 30);
  assert.equal(stats.total.skipped, 0, 'nothing dropped: the buffer held every due message');
  assert.equal(stats.total.sent, 30);
  assert.deepEqual(
    pubs.map((m) => m.seq),
    pubs.map((_, k) => k + 1),
  );
  // the burst keeps scheduled times, so its e2e delay shows the offline period
  const ts = pubs.map((m) => Math.round(m.ts - engine.startAt));
  assert.deepEqual(
    ts,
    ts.map((_, k) => k * 100),
  );
  // the burst's lateness is the outage's, not the generator's: no schedule lag (e2e shows it, from ts)
  assert.equal(stats.hInterval.scheduleLag.totalCount, 26, 'the 4 buffered messages are not schedule lag');
  assert.ok(stats.hInterval.scheduleLag.maxValue / 1000 < 100, 'on-time messages went out on time');
  engine.stop();
});

test('backpressure wait: a full window holds messages until acks free it; drop counts them instead', async () => {
  for (const policy of ['wait', 'drop'] as const) {
    const clock = new FakeClock();
    const held: Array<{ id: number; peer: import('./fakes/mem-broker.js').MemBrokerPeer }> = [];
    const broker = new MemBroker((p, peer) => {
      if (p.cmd === 'publish') held.push({ id: p.messageId ?? 0, peer });
      else autoAck(p, peer);
    });
    const stats = new Stats(clock.now());
    const s = scenario({
      devices: 1,
      spawnRate: 1,
      runTime: '1s',
      interval: '100ms',
      qos: 1,
      inflight: 2,
      backpressure: policy,
    });
    const engine = new Engine({
      scenario: s,
      url: new URL('mqtt://mem'),
      stats,
      clock,
      openTransport: broker.factory,
    });
    engine.start();
    await drive(clock, 450); // 5 slots due (0..400 ms), window 2, no acks yet
    assert.equal(stats.total.sent, 2);
    if (policy === 'wait') {
      assert.equal(engine.buffered, 3);
      for (const h of held.splice(0)) h.peer.send({ cmd: 'puback', messageId: h.id });
      await flush();
      await flush();
      assert.equal(stats.total.sent, 4, 'two acks let two waiting messages out');
    } else {
      assert.equal(stats.total.skipped, 3);
      assert.equal(stats.errors()[0]?.kind, 'backpressure');
    }
    engine.stop();
  }
});

test('connect-rate limit paces reconnect storms and the ramp alike', async () => {
  const { clock, stats, engine } = rig({
    devices: 20,
    spawnRate: 1000,
    runTime: '5s',
    interval: '1s',
    connectRate: 5,
  });
  engine.start();
  await drive(clock, 1000, 10);
  // one token at start, then 5/s: about 6 attempts in the first second, not 20
  assert.ok(
    stats.total.connectAttempts >= 5 && stats.total.connectAttempts <= 7,
    `${stats.total.connectAttempts}`,
  );
  await drive(clock, 3000, 10);
  assert.equal(stats.total.connects, 20);
  engine.stop();
});

test('setTargetDevices ramps down and up while running; setIntervalMs changes the rate', async () => {
  const { clock, stats, engine } = rig({
    devices: 10,
    spawnRate: 100,
    runTime: '10s',
    interval: '100ms',
    qos: 0,
  });
  engine.start();
  await drive(clock, 1000);
  assert.equal(engine.connectedNow, 10);
  engine.setTargetDevices(4);
  await drive(clock, 50);
  assert.equal(engine.connectedNow, 4);
  const before = stats.total.sent;
  await drive(clock, 1000);
  assert.ok(
    Math.abs(stats.total.sent - before - 40) <= 4,
    `4 devices × 10/s, got ${stats.total.sent - before}`,
  );
  engine.setIntervalMs(50);
  const mid = stats.total.sent;
  await drive(clock, 1000);
  assert.ok(Math.abs(stats.total.sent - mid - 80) <= 8, `4 devices × 20/s, got ${stats.total.sent - mid}`);
  engine.setTargetDevices(10);
  await drive(clock, 200);
  assert.equal(engine.connectedNow, 10);
  // a return to the fleet after a manual reduction is no reconnect: devices.reconnects counts outages only
  assert.equal(stats.total.connects, 16, 'the 6 parked devices came back');
  assert.equal(stats.total.reconnects, 0, 'returns from parking are not reconnects');
  assert.equal(stats.total.dropped, 0, 'parking is not a dropped connection');
  assert.equal(engine.everConnected, 10);
  engine.stop();
});

test('a device taken out of the fleet and back within one interval publishes on one schedule, once per slot', async () => {
  // 1 s interval: the device's next slot is still ahead when it is parked and brought back, so its old entry in
  // the send queue is still there when the new schedule starts
  const { clock, broker, stats, engine } = rig({
    devices: 4,
    spawnRate: 1000,
    runTime: '10s',
    interval: '1s',
    qos: 0,
  });
  engine.start();
  await drive(clock, 1500);
  engine.setTargetDevices(2);
  await drive(clock, 100);
  engine.setTargetDevices(4);
  await drive(clock, 9000);
  const seqs = new Map<string, number[]>();
  for (const p of broker.packets) {
    if (p.cmd !== 'publish') continue;
    const m = JSON.parse(p.payload.toString()) as { deviceId: string; seq: number; ts: number };
    seqs.set(m.deviceId, [...(seqs.get(m.deviceId) ?? []), m.ts]);
  }
  for (const [id, ts] of seqs) {
    // one message per slot: consecutive scheduled times one interval apart, never two in one slot
    for (let k = 1; k < ts.length; k++) {
      const gap = (ts[k] as number) - (ts[k - 1] as number);
      assert.ok(gap >= 999, `${id}: two messages ${gap} ms apart (${ts.join(', ')})`);
    }
  }
  assert.ok(stats.total.sent <= 4 * 10, `at most one per device-second: ${stats.total.sent}`);
  engine.stop();
});

test('with --messages-per-device, a device parked and brought back still sends all its messages', async () => {
  const { clock, stats, engine } = rig({
    devices: 2,
    spawnRate: 1000,
    runTime: '20s',
    interval: '200ms',
    messagesPerDevice: 20,
    qos: 0,
  });
  engine.start();
  await drive(clock, 1000);
  engine.setTargetDevices(1);
  // long enough that the parked device's old queue entry falls due while it is out
  await drive(clock, 1000);
  engine.setTargetDevices(2);
  await drive(clock, 10_000);
  assert.equal(stats.total.sent, 40, 'both devices sent their 20');
  assert.equal(engine.allDone, true);
  engine.stop();
});

test('command topic: each device subscribes after CONNACK; commands are counted; source addresses rotate', async () => {
  const clock = new FakeClock();
  const seen: string[] = [];
  const broker = new MemBroker((p, peer) => {
    if (p.cmd === 'subscribe') {
      seen.push(p.subscriptions[0]?.topic ?? '');
      peer.send({ cmd: 'suback', messageId: p.messageId ?? 0, granted: [1] });
      peer.send({
        cmd: 'publish',
        topic: p.subscriptions[0]?.topic ?? '',
        payload: Buffer.from('reboot'),
        qos: 1,
        messageId: 7,
        dup: false,
        retain: false,
      });
    } else autoAck(p, peer);
  });
  const addrs: Array<string | undefined> = [];
  const factory: typeof broker.factory = (o, onOpen) => {
    addrs.push((o as { localAddress?: string }).localAddress);
    return broker.factory(o, onOpen);
  };
  const stats = new Stats(clock.now());
  const s = scenario({
    devices: 3,
    spawnRate: 100,
    runTime: '1s',
    interval: '1s',
    commandTopic: 'cmd/{deviceId}',
    sourceIp: ['127.0.0.2,127.0.0.3'],
  });
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats,
    clock,
    openTransport: factory,
  });
  engine.start();
  await drive(clock, 200);
  // devices join in the fleet's order (bit reversal: 0, 2, 1); each one's source address goes by its index
  assert.deepEqual(seen, ['cmd/dev-000000', 'cmd/dev-000002', 'cmd/dev-000001']);
  assert.equal(stats.total.commands, 3);
  assert.deepEqual(addrs, ['127.0.0.2', '127.0.0.2', '127.0.0.3']);
  assert.ok(
    broker.packets.some((p) => p.cmd === 'puback' && p.messageId === 7),
    'the device acks QoS 1 commands',
  );
  // bytes sent count SUBSCRIBE and the command's PUBACK too, not only CONNECT and PUBLISH
  assert.equal(engine.takeBytesSent(), broker.bytesIn);
  engine.stop();
});

test('tick: due messages go out together at most once per tick; the lateness shows as schedule lag', async () => {
  for (const tick of ['1ms', '20ms'] as const) {
    const clock = new FakeClock();
    let wakes = 0;
    const counting = Object.create(clock) as FakeClock;
    counting.setTimeout = (fn, ms) => {
      wakes++;
      return clock.setTimeout(fn, ms);
    };
    counting.now = () => clock.now();
    counting.clearTimeout = (h) => clock.clearTimeout(h);
    const broker = new MemBroker();
    const stats = new Stats(clock.now());
    const s = scenario({ devices: 50, spawnRate: 10_000, runTime: '1s', interval: '100ms', qos: 0, tick });
    const engine = new Engine({
      scenario: s,
      url: new URL('mqtt://mem'),
      stats,
      clock: counting,
      openTransport: broker.factory,
    });
    engine.start();
    await drive(clock, 1100, 1);
    assert.equal(stats.total.sent, stats.total.scheduled);
    const lagMaxMs = stats.hInterval.scheduleLag.maxValue / 1000;
    if (tick === '20ms') {
      assert.ok(lagMaxMs <= 20.1, `lag ≤ tick (${lagMaxMs})`);
      assert.ok(wakes <= 1000 / 20 + 60, `few wake-ups (${wakes})`); // + housekeeping and connects
    } else assert.ok(lagMaxMs <= 1.1, `lag ≤ 1 ms (${lagMaxMs})`);
    engine.stop();
  }
});

test('stages: the fleet follows linear ramps up, a plateau and a ramp down', async () => {
  const clock = new FakeClock();
  const broker = new MemBroker();
  const stats = new Stats(clock.now());
  const s = scenario({ stages: ['1s:10', '1s:10', '1s:0'], spawnRate: 1000, interval: '100ms', qos: 0 });
  assert.equal(s.devices, 10);
  assert.equal(s.runTimeMs, 3000);
  const engine = new Engine({
    scenario: s,
    url: new URL('mqtt://mem'),
    stats,
    clock,
    openTransport: broker.factory,
  });
  engine.start();
  const seen: number[] = [];
  for (let k = 0; k < 6; k++) {
    await drive(clock, 500, 5);
    seen.push(engine.connectedNow);
  }
  // at 0.5 s ≈ half way up, 1 s / 1.5 s / 2 s full, 2.5 s half way down, 3 s empty (± one housekeeping step)
  const expected = [5, 10, 10, 10, 5, 0];
  for (const [k, n] of seen.entries()) {
    assert.ok(Math.abs(n - (expected[k] as number)) <= 1, `t=${(k + 1) * 0.5}s: ${seen.join(',')}`);
  }
  engine.stop();
});

test('stageTargetAt interpolates linearly from 0 through each stage', async () => {
  const { stageTargetAt: stageTarget } = await import('../../src/scenario/plan.js');
  const st = [
    { durationMs: 1000, devices: 100 },
    { durationMs: 2000, devices: 100 },
    { durationMs: 1000, devices: 20 },
  ];
  assert.deepEqual(
    [0, 500, 1000, 2500, 3500, 4000, 9000].map((t) => stageTarget(st, t)),
    [0, 50, 100, 100, 60, 20, 20],
  );
});

/**
 * Runs the fleet as N engines (segments i/N) on one fake clock and one in-memory broker, and returns every
 * published (deviceId, seq, ts), sorted, with the fleet size each engine had at every step.
 */
async function runSegments(
  over: Record<string, unknown>,
  n: number,
): Promise<{ messages: string[]; connected: number[][]; counts: number[] }> {
  const clock = new FakeClock();
  const broker = new MemBroker();
  const s = scenario({ tick: '0ms', qos: 0, ...over });
  const engines = Array.from(
    { length: n },
    (_, index) =>
      new Engine({
        scenario: s,
        url: new URL('mqtt://mem'),
        stats: new Stats(clock.now()),
        clock,
        openTransport: broker.factory,
        segment: { index, count: n },
      }),
  );
  for (const e of engines) e.start();
  const connected: number[][] = [];
  clock.advance(0);
  await flush();
  for (let t = 0; t < s.runTimeMs + 200; t += 5) {
    clock.advance(5);
    await flush();
    connected.push(engines.map((e) => e.connectedNow));
  }
  for (const e of engines) e.stop();
  const messages: string[] = [];
  for (const p of broker.packets) {
    if (p.cmd !== 'publish') continue;
    const m = JSON.parse(p.payload.toString()) as { deviceId: string; seq: number; ts: number };
    messages.push(`${m.deviceId}:${m.seq}:${m.ts}`);
  }
  return { messages: messages.sort(), connected, counts: engines.map((e) => e.plan.count) };
}

test('segments in fake time: N engines publish exactly the (deviceId, seq, ts) multiset of one engine, ramping together', async () => {
  const cases: Array<Record<string, unknown>> = [
    { devices: 37, spawnRate: 100, runTime: '2s', interval: '100ms' },
    { devices: 23, spawnRate: 20, runTime: '2s', interval: '150ms', messagesPerDevice: 6 },
    // up, down (the last to join leave first), up again
    { stages: ['500ms:30', '500ms:37', '500ms:10', '750ms:37'], spawnRate: 200, interval: '100ms' },
  ];
  for (const over of cases) {
    const one = await runSegments(over, 1);
    assert.ok(one.messages.length > 50, `${JSON.stringify(over)}: the whole fleet published`);
    for (const n of [2, 3, 5]) {
      const split = await runSegments(over, n);
      assert.deepEqual(split.messages, one.messages, `${JSON.stringify(over)} as ${n} segments`);
      const devices = split.counts.reduce((a, b) => a + b, 0);
      for (const [step, perEngine] of split.connected.entries()) {
        const all = one.connected[step]?.[0] as number;
        // the same devices are connected at every step, and each segment holds its share of them
        assert.equal(
          perEngine.reduce((a, b) => a + b, 0),
          all,
          `step ${step}`,
        );
        for (const [i, c] of perEngine.entries())
          assert.ok(
            Math.abs(c - (all * (split.counts[i] as number)) / devices) <= 3,
            `${JSON.stringify(over)}: segment ${i}/${n} at step ${step}: ${c} of ${all}`,
          );
      }
    }
  }
});

test('a segment with no devices is valid: it schedules nothing and runs until its run time like the others', async () => {
  const { clock, stats, engine } = rig(
    { devices: 2, spawnRate: 10, runTime: '1s', interval: '100ms' },
    { engine: { segment: { index: 0, count: 3 } } },
  );
  assert.equal(engine.plan.count, 0);
  engine.start();
  await drive(clock, 1200);
  assert.equal(stats.total.scheduled, 0);
  assert.equal(engine.allDone, false, 'no messagesPerDevice: never done before the run time');
  engine.stop();
});
