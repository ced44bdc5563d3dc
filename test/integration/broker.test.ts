import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { startEmbeddedBroker } from '../../src/broker/embedded.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { childrenOf, commandLine, isAlive, killQuietly, waitForExit } from '../helpers/process.js';
import { findBinary, skipUnless } from '../helpers/services.js';

/** Brokers the tests run against: the embedded one (Aedes, own process) and the Mosquitto harness. */

const embeddedTs = fileURLToPath(new URL('../../src/broker/embedded.ts', import.meta.url));
const mosquittoHelper = fileURLToPath(new URL('../helpers/mosquitto.ts', import.meta.url));
const embeddedJs = fileURLToPath(new URL('../../dist/broker/embedded.js', import.meta.url));

function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
}

/** Publishes QoS 1 from one client and checks a second, subscribed client gets exactly that message. */
async function roundTrip(url: string, opts: mqtt.IClientOptions = {}): Promise<void> {
  const sub = await connect(url, opts);
  const pub = await connect(url, opts);
  try {
    const topic = `fleetload/test/${process.pid}/${Date.now()}`;
    await sub.subscribeAsync(topic, { qos: 1 });
    const received = new Promise<{ payload: string; qos: number }>((resolve) => {
      sub.on('message', (t, payload, packet) => {
        if (t === topic) resolve({ payload: payload.toString(), qos: packet.qos });
      });
    });
    // For QoS 1, publishAsync settles when the PUBACK arrives.
    await pub.publishAsync(topic, 'hello', { qos: 1 });
    assert.deepEqual(await received, { payload: 'hello', qos: 1 });
  } finally {
    await Promise.all([sub.endAsync(true), pub.endAsync(true)]);
  }
}

interface Owner {
  pid: number;
  /** The first line the script printed, parsed. */
  reported: { pid: number; port: number };
  exited: Promise<number | null>;
}

/**
 * Runs `script` (an ES module body) in another Node process and waits for the JSON line it prints: the process
 * that owns a broker, for tests that kill that owner and watch the broker.
 */
async function ownerProcess(script: string, tsx: boolean): Promise<Owner> {
  const owner = spawn(
    process.execPath,
    [...(tsx ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const pid = owner.pid!;
  const exited = new Promise<number | null>((resolve) => owner.once('exit', (code) => resolve(code)));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('owner script did not report within 10 s')), 10_000);
      createInterface({ input: owner.stdout! }).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      void exited.then((code) => reject(new Error(`owner script exited (${code}) before reporting`)));
    });
    return { pid, reported: JSON.parse(line) as Owner['reported'], exited };
  } catch (e) {
    killQuietly(pid);
    throw e;
  }
}

/** A process that starts the embedded broker from `module`, prints its pid and port, and idles (or ends). */
function embeddedOwner(module: string, opts: { tsx: boolean; idle: boolean }): Promise<Owner> {
  return ownerProcess(
    `const { startEmbeddedBroker } = await import(${JSON.stringify(module)});
     const b = await startEmbeddedBroker();
     console.log(JSON.stringify({ pid: b.pid, port: b.port }));
     ${opts.idle ? 'setInterval(() => {}, 1000);' : ''}`,
    opts.tsx,
  );
}

describe('embedded broker (Aedes in its own process)', () => {
  test('publishes QoS 1 from one client to a subscriber, then stop() leaves no process', async () => {
    const broker = await startEmbeddedBroker();
    try {
      assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`);
      assert.notEqual(broker.pid, process.pid);
      assert.ok(isAlive(broker.pid));
      await roundTrip(broker.url);
    } finally {
      await broker.stop();
    }
    assert.throws(() => process.kill(broker.pid, 0), { code: 'ESRCH' });
    assert.deepEqual(await broker.exited, { code: 0, signal: null });
    await broker.stop(); // idempotent
  });

  test('stop() closes connected clients and returns promptly', async () => {
    const broker = await startEmbeddedBroker();
    const client = await connect(broker.url);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await broker.stop();
    // promptly = the broker closed its clients and exited by itself, not SIGKILLed at the end of stop()'s grace
    assert.deepEqual(await broker.exited, { code: 0, signal: null });
    await closed;
    client.end(true);
    assert.equal(isAlive(broker.pid), false);
  });

  test('refuses an MQTT 5 CONNECT (Aedes speaks 3.1.1 only)', async () => {
    const broker = await startEmbeddedBroker();
    try {
      await assert.rejects(connect(broker.url, { protocolVersion: 5 }));
      await roundTrip(broker.url, { protocolVersion: 4 });
    } finally {
      await broker.stop();
    }
  });

  test('a port already in use is a clear error, the child’s output reaches log(), and no process is left', async () => {
    const first = await startEmbeddedBroker();
    try {
      const logged: string[] = [];
      await assert.rejects(
        startEmbeddedBroker({ port: first.port, log: (l) => logged.push(l) }),
        (e: Error) => {
          assert.match(
            e.message,
            /embedded broker failed to start: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
          );
          return true;
        },
      );
      assert.ok(
        logged.some((l) => l.includes('EADDRINUSE')),
        `log() got the child's stderr: ${JSON.stringify(logged)}`,
      );
      const brokers = childrenOf().filter((pid) => /broker\/child\.[jt]s/.test(commandLine(pid)));
      assert.deepEqual(brokers, [first.pid], 'the failed broker process is gone when start rejects');
    } finally {
      await first.stop();
    }
  });

  test('dies with its parent when the parent is SIGKILLed', async () => {
    const owner = await embeddedOwner(embeddedTs, { tsx: true, idle: true });
    const brokerPid = owner.reported.pid;
    assert.ok(isAlive(brokerPid));
    process.kill(owner.pid, 'SIGKILL');
    await owner.exited;
    const gone = await waitForExit(brokerPid, 3000);
    if (!gone) killQuietly(brokerPid);
    assert.ok(gone, 'the broker exits within 3 s of its parent dying');
  });

  test('does not keep its parent alive: a parent that forgets stop() still exits, and the broker with it', async () => {
    const owner = await embeddedOwner(embeddedTs, { tsx: true, idle: false });
    const brokerPid = owner.reported.pid;
    const code = await Promise.race([owner.exited, new Promise((r) => setTimeout(() => r('hung'), 3000))]);
    if (code === 'hung') killQuietly(owner.pid);
    assert.equal(code, 0, 'the parent ends by itself');
    const gone = await waitForExit(brokerPid, 3000);
    if (!gone) killQuietly(brokerPid);
    assert.ok(gone, 'the broker follows its parent');
  });

  test('runs from the compiled dist/ (child.js, no tsx)', {
    skip: existsSync(embeddedJs) ? false : 'dist/ not built (npm test builds it)',
  }, async () => {
    const owner = await embeddedOwner(embeddedJs, { tsx: false, idle: true });
    const brokerPid = owner.reported.pid;
    assert.match(commandLine(brokerPid), /dist\/broker\/child\.js/);
    await roundTrip(`mqtt://127.0.0.1:${owner.reported.port}`);
    process.kill(owner.pid, 'SIGKILL');
    const gone = await waitForExit(brokerPid, 3000);
    if (!gone) killQuietly(brokerPid);
    assert.ok(gone);
  });
});

describe('Mosquitto harness', { skip: skipUnless('mosquitto') }, () => {
  test('starts on a free port, serves MQTT 3.1.1 and 5, restarts on the same port, stops', async () => {
    const broker = await startMosquitto();
    try {
      assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`);
      await roundTrip(broker.url);
      await roundTrip(broker.url, { protocolVersion: 5 });

      const firstPid = broker.pid;
      const client = await connect(broker.url);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      await broker.restart();
      await closed; // the restart dropped the connection
      client.end(true);
      assert.notEqual(broker.pid, firstPid);
      assert.equal(isAlive(firstPid), false);
      await roundTrip(broker.url);
    } finally {
      await broker.stop();
    }
    assert.equal(isAlive(broker.pid), false);
    await broker.stop(); // idempotent
  });

  test('kill() crashes it and restart() brings it back, also from a frozen (SIGSTOP) broker', async () => {
    const broker = await startMosquitto();
    try {
      broker.kill('SIGKILL');
      assert.ok(await waitForExit(broker.pid, 3000));
      await assert.rejects(connect(broker.url));
      await broker.restart();
      await roundTrip(broker.url);

      broker.kill('SIGSTOP');
      await assert.rejects(connect(broker.url, { connectTimeout: 300 }));
      await broker.restart();
      await roundTrip(broker.url);

      // outage(): killed, down for the time asked (a new process after it), then serving again
      const before = broker.pid;
      const down = broker.outage(300);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(await waitForExit(before, 3000), 'the broker is down during the outage');
      await assert.rejects(connect(broker.url, { connectTimeout: 100 }));
      await down;
      assert.notEqual(broker.pid, before);
      await roundTrip(broker.url);
    } finally {
      await broker.stop();
    }
  });

  test('dies with the test process even when that is SIGKILLed (setpriv --pdeathsig)', {
    skip:
      process.platform === 'linux' && findBinary('setpriv') ? false : 'needs Linux and setpriv (util-linux)',
  }, async () => {
    const owner = await ownerProcess(
      `const { startMosquitto } = await import(${JSON.stringify(mosquittoHelper)});
         const m = await startMosquitto();
         console.log(JSON.stringify({ pid: m.pid, port: m.port }));
         setInterval(() => {}, 1000);`,
      true,
    );
    const brokerPid = owner.reported.pid;
    assert.ok(isAlive(brokerPid));
    process.kill(owner.pid, 'SIGKILL');
    const gone = await waitForExit(brokerPid, 3000);
    if (!gone) killQuietly(brokerPid);
    assert.ok(gone, 'mosquitto exits within 3 s of the test process dying');
  });

  test('serves MQTT over WebSockets when asked', async () => {
    const broker = await startMosquitto({ websockets: true });
    try {
      assert.equal(broker.wsUrl, `ws://127.0.0.1:${broker.wsPort}`);
      await roundTrip(broker.wsUrl!);
    } finally {
      await broker.stop();
    }
  });

  test('a bad extraConfig fails start-up with mosquitto’s own message', async () => {
    await assert.rejects(
      startMosquitto({ extraConfig: 'no_such_option 1' }),
      /no_such_option|Unknown configuration/i,
    );
  });
});
