import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect } from 'nats';
import { NatsSource } from '../../src/consumer/nats-source.js';
import { startNats } from '../helpers/nats.js';
import { skipUnless } from '../helpers/services.js';

/**
 * The NATS source tells the run when its connection drops and comes back (consumer-disconnected /
 * consumer-reconnected events, docs/guide/events.md): a real nats-server restarted under an attached source.
 */

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('nats source events', { skip: skipUnless('nats-server') }, () => {
  test('nats-server restarted: one disconnect, then one reconnect, told in that order', async () => {
    const server = await startNats({ mqtt: false });
    const seen: string[] = [];
    const source = new NatsSource({
      url: server.url,
      subject: 'fleetload.ev.*',
      durable: 'events-test',
      connectTimeoutMs: 5000,
      deleteOnClose: true,
      onDisconnect: (reason) => seen.push(`disconnect: ${reason}`),
      onReconnect: () => seen.push('reconnect'),
    });
    try {
      const nc = await connect({ servers: server.url.replace('nats://', '') });
      try {
        await (await nc.jetstreamManager()).streams.add({ name: 'EV', subjects: ['fleetload.ev.*'] });
      } finally {
        await nc.close();
      }
      await source.open(() => {});
      assert.equal(seen.length, 0, 'nothing while attached');
      await server.restart();
      await until(() => seen.includes('reconnect'), 20_000, 'the source reconnected');
      assert.deepEqual(seen, ['disconnect: consumer connection lost; reconnecting', 'reconnect']);
    } finally {
      await source.close();
      await server.stop();
    }
  });
});
