import { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import type { Transport } from '../../../src/mqtt/transport.js';

/**
 * An in-memory MQTT peer for protocol tests: every client stream opened through `factory` is answered by
 * `respond`, which sees each parsed packet and may write packets back. No sockets, no timers.
 */
class Pipe extends Duplex {
  peer: Pipe | undefined;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const peer = this.peer;
    queueMicrotask(() => peer?.push(chunk));
    cb();
  }
  override _final(cb: () => void): void {
    const peer = this.peer;
    queueMicrotask(() => peer?.push(null));
    cb();
  }
}

export interface MemBrokerPeer {
  send(p: mqttPacket.Packet): void;
  raw(b: Buffer): void;
  close(): void;
  version: 4 | 5;
}

export type Responder = (p: mqttPacket.Packet, peer: MemBrokerPeer) => void;

export class MemBroker {
  readonly packets: mqttPacket.Packet[] = [];
  readonly peers: MemBrokerPeer[] = [];
  /** bytes the clients wrote, every packet of every connection */
  bytesIn = 0;
  constructor(public respond: Responder = autoAck) {}

  factory = (_o: unknown, onOpen: () => void): Transport => {
    const client = new Pipe();
    const server = new Pipe();
    client.peer = server;
    server.peer = client;
    client.on('close', () => server.destroy());
    const peer: MemBrokerPeer = {
      version: 4,
      send: (p) => server.write(mqttPacket.generate(p, { protocolVersion: peer.version })),
      raw: (b) => server.write(b),
      close: () => {
        server.push(null);
        client.destroy();
      },
    };
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p) => {
      if (p.cmd === 'connect') {
        peer.version = (p.protocolVersion ?? 4) as 4 | 5;
        (parser as unknown as { settings: object }).settings = { protocolVersion: peer.version };
      }
      this.packets.push(p);
      this.respond(p, peer);
    });
    server.on('data', (b: Buffer) => {
      this.bytesIn += b.length;
      parser.parse(b);
    });
    server.on('end', () => server.end()); // like a broker: the client's DISCONNECT + FIN closes the connection
    this.peers.push(peer);
    queueMicrotask(onOpen);
    return { stream: client };
  };
}

/** CONNACK ok, PUBACK / PUBREC / PUBCOMP as a well-behaved broker would. */
export function autoAck(p: mqttPacket.Packet, peer: MemBrokerPeer): void {
  if (p.cmd === 'connect') peer.send({ cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false });
  else if (p.cmd === 'publish' && p.qos === 1) peer.send({ cmd: 'puback', messageId: p.messageId ?? 0 });
  else if (p.cmd === 'publish' && p.qos === 2) peer.send({ cmd: 'pubrec', messageId: p.messageId ?? 0 });
  else if (p.cmd === 'pubrel') peer.send({ cmd: 'pubcomp', messageId: p.messageId ?? 0 });
  else if (p.cmd === 'pingreq') peer.send({ cmd: 'pingresp' });
}

/** Lets queued stream events run (microtasks, then one macrotask turn). */
export const flush = () => new Promise<void>((r) => setImmediate(r));
