/**
 * A minimal MQTT sink for the bench: accepts any CONNECT, answers CONNACK, PUBACK (QoS 1), PUBREC/PUBCOMP
 * (QoS 2), PINGRESP, and counts PUBLISH packets — no routing, no storage. It shows what one fleetload process can
 * generate when the broker is not the bottleneck (Mosquitto caps first on this machine).
 * usage: node --import tsx bench/sink-broker.ts PORT   → prints "ready PORT", then "count N" on SIGUSR2/exit
 */
import net from 'node:net';
import { bodyStart, CMD, FrameReader } from '../src/mqtt/packets.js';

const port = Number(process.argv[2] ?? 0);
let publishes = 0;
const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  const reader = new FrameReader();
  let v5 = false;
  sock.on('data', (chunk: Buffer) => {
    const out: Buffer[] = [];
    reader.push(chunk, (buf, start) => {
      const first = buf[start] as number;
      const type = first >> 4;
      const body = bodyStart(buf, start);
      if (type === CMD.publish) {
        publishes++;
        const qos = (first >> 1) & 3;
        if (qos === 0) return;
        const topicLen = ((buf[body] as number) << 8) | (buf[body + 1] as number);
        const id = body + 2 + topicLen;
        out.push(Buffer.from([qos === 1 ? 0x40 : 0x50, 2, buf[id] as number, buf[id + 1] as number]));
      } else if (type === CMD.pubrel) {
        out.push(Buffer.from([0x70, 2, buf[body] as number, buf[body + 1] as number]));
      } else if (type === CMD.connect) {
        // protocol level byte: after the 2-byte length + "MQTT"
        v5 = buf[body + 6] === 5;
        out.push(v5 ? Buffer.from([0x20, 3, 0, 0, 0]) : CONNACK);
      } else if (type === CMD.pingreq) out.push(PINGRESP);
      else if (type === CMD.disconnect) sock.end();
    });
    if (out.length === 1) sock.write(out[0] as Buffer);
    else if (out.length > 1) sock.write(Buffer.concat(out));
  });
  sock.on('error', () => {});
});
server.maxConnections = 1_000_000;
server.listen(port, '127.0.0.1', () => {
  const a = server.address() as net.AddressInfo;
  process.stdout.write(`ready ${a.port}\n`);
});
const report = () => process.stdout.write(`count ${publishes}\n`);
process.on('SIGUSR2', report);
process.on('SIGTERM', () => {
  report();
  process.exit(0);
});
