import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../../src/cli/certs.js';
import { repoRoot, runCli, tmpDir } from '../helpers/cli.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import { skipUnless } from '../helpers/services.js';
import { summaryIn } from '../helpers/summary.js';

/** Whole runs over mqtts://: devices and the consumer both trust the broker through --ca (or --insecure). */

describe('runs over TLS', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  let certs: string;
  before(async () => {
    certs = join(tmpDir('fleetload-tls-run-'), 'certs');
    await makeCerts({ devices: 1, out: certs, serverNames: ['localhost', '127.0.0.1'] });
    broker = await startMosquitto({
      tls: {
        certfile: join(certs, 'server.pem'),
        keyfile: join(certs, 'server.key'),
        cafile: join(certs, 'ca.pem'),
      },
    });
  });
  after(async () => {
    await broker?.stop();
  });

  for (const trust of ['ca', 'insecure'] as const) {
    test(`mqtts:// with ${trust === 'ca' ? '--ca' : '--insecure'}: devices and consumer connect, every message measured`, async () => {
      const out = tmpDir();
      const args = ['run', '-H', broker.tlsUrl as string, '-u', '10', '-r', '200', '-i', '100ms'];
      args.push('--messages-per-device', '5', '--headless', '--out', out);
      args.push(...(trust === 'ca' ? ['--ca', join(certs, 'ca.pem')] : ['--insecure']));
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const s = summaryIn(out);
      assert.equal(s.devices.connectedPeak, 10);
      assert.equal(s.messages.received, 50);
      assert.equal(s.messages.lost, 0);
    });
  }

  test("summary.json counts the devices' TLS handshakes: the first full, the others resume its session", async () => {
    const out = tmpDir();
    // 5 devices a second: each connects after the previous one's session ticket arrived
    const args = ['run', '-H', broker.tlsUrl as string, '-u', '6', '-r', '5', '-i', '200ms'];
    args.push('--messages-per-device', '2', '--headless', '--out', out, '--ca', join(certs, 'ca.pem'));
    const r = await runCli(args);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = summaryIn(out);
    assert.equal(s.devices.reconnects, 0);
    assert.equal(s.devices.tls?.handshakes, 6, 'one per device');
    // every device after the first finds a session kept (a very slow machine may let the second start early)
    const resumed = s.devices.tls?.resumed ?? -1;
    assert.ok(resumed >= 4 && resumed <= 5, `resumed ${resumed}`);
    assert.match(r.stdout, new RegExp(`TLS handshakes 6 \\(${resumed} resumed\\)`));
  });

  test('fleetload consume over mqtts://: attaches with --ca, refuses the untrusted certificate without it', async () => {
    const base = ['consume', '-H', broker.tlsUrl as string, '--run-id', 'tls', '-t', '1s', '--grace', '0ms'];
    // attaching is what is tested: nothing is published, which --accept observed lets pass
    const ok = await runCli([
      ...base,
      '--ca',
      join(certs, 'ca.pem'),
      '--accept',
      'observed',
      '--out',
      tmpDir(),
    ]);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const refused = await runCli([...base, '--connect-timeout', '3s', '--out', tmpDir()]);
    assert.equal(refused.code, 3, refused.stderr);
    const missing = await runCli([...base, '--ca', 'nope.pem', '--out', tmpDir()]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /ca: cannot read nope\.pem: no such file \(from --ca\)/);
  });

  test('--tls-version 1.2: devices and consumer connect over TLS 1.2, every message measured', async () => {
    const out = tmpDir();
    const args = ['run', '-H', broker.tlsUrl as string, '-u', '10', '-r', '200', '-i', '100ms'];
    args.push('--messages-per-device', '5', '--headless', '--out', out, '--ca', join(certs, 'ca.pem'));
    const r = await runCli([...args, '--tls-version', '1.2']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = summaryIn(out);
    assert.equal(s.devices.connectedPeak, 10);
    assert.equal(s.messages.received, 50);
    assert.equal(s.messages.lost, 0);
    assert.match(readFileSync(join(out, s.runId, 'scenario.yaml'), 'utf8'), /^tlsVersion: "?1\.2"?$/m);
  });

  test('a broker limited to TLS 1.3 with --tls-version 1.2: exit 3 and a hint naming --tls-version', async () => {
    const only13 = await startMosquitto({
      tls: { certfile: join(certs, 'server.pem'), keyfile: join(certs, 'server.key') },
      extraConfig: 'tls_version tlsv1.3',
    });
    try {
      const base = [
        'run',
        '-H',
        only13.tlsUrl as string,
        '-u',
        '2',
        '-i',
        '100ms',
        '--messages-per-device',
        '2',
      ];
      base.push('--headless', '--connect-timeout', '3s', '--ca', join(certs, 'ca.pem'));
      const r = await runCli([...base, '--tls-version', '1.2', '--out', tmpDir()]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /could not attach .*protocol version.*; hint: .*--tls-version[^\n]*\n$/i);
      // the devices alone (no consumer to fail first) get the same fix
      const devices = await runCli([
        ...base,
        '--tls-version',
        '1.2',
        '--consumer',
        'none',
        '--out',
        tmpDir(),
      ]);
      assert.equal(devices.code, 3, devices.stderr);
      assert.match(devices.stderr, /no device could connect.*PROTOCOL_VERSION.*; hint: .*--tls-version/i);
      const consume = await runCli([
        'consume',
        '-H',
        only13.tlsUrl as string,
        '--ca',
        join(certs, 'ca.pem'),
        '--tls-version',
        '1.2',
        '--connect-timeout',
        '3s',
        '--out',
        tmpDir(),
      ]);
      assert.equal(consume.code, 3, consume.stderr);
      assert.match(consume.stderr, /could not attach .*protocol version.*; hint: .*--tls-version/i);
      const ok = await runCli([...base, '--tls-version', '1.3', '--out', tmpDir()]);
      assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    } finally {
      await only13.stop();
    }
  });

  test('mqtts:// with an untrusted broker certificate: exit 3 naming the TLS error', async () => {
    const r = await runCli([
      'run',
      '-H',
      broker.tlsUrl as string,
      '-u',
      '2',
      '--headless',
      '--connect-timeout',
      '3s',
      '--out',
      tmpDir(),
    ]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /could not attach .*(self.signed|SELF_SIGNED|unable to verify|certificate)/i);
  });
});

describe('runs against a broker that requires client certificates', { skip: skipUnless('mosquitto') }, () => {
  let broker: Mosquitto;
  let certs: string;
  before(async () => {
    certs = join(tmpDir('fleetload-mtls-run-'), 'certs');
    // dev-000000..2 are the devices; dev-000003's certificate serves as the consumer's own
    await makeCerts({ devices: 4, out: certs, serverNames: ['localhost', '127.0.0.1'] });
    broker = await startMosquitto({
      tls: {
        certfile: join(certs, 'server.pem'),
        keyfile: join(certs, 'server.key'),
        cafile: join(certs, 'ca.pem'),
        requireCertificate: true,
      },
    });
  });
  after(async () => {
    await broker?.stop();
  });

  const devices = () => [
    'run',
    '-H',
    broker.tlsUrl as string,
    '-u',
    '3',
    '-r',
    '100',
    '-i',
    '100ms',
    '--messages-per-device',
    '5',
    '--headless',
    '--ca',
    join(certs, 'ca.pem'),
    '--cert',
    join(certs, '{deviceId}.pem'),
    '--key',
    join(certs, '{deviceId}.key'),
    '--connect-timeout',
    '3s',
  ];

  test('per-device certificates + --consumer-cert/--consumer-key: every message measured', async () => {
    const out = tmpDir();
    const r = await runCli([
      ...devices(),
      '--consumer-cert',
      join(certs, 'dev-000003.pem'),
      '--consumer-key',
      join(certs, 'dev-000003.key'),
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = summaryIn(out);
    assert.equal(s.devices.connectedPeak, 3);
    assert.equal(s.messages.received, 15);
    assert.equal(s.messages.lost, 0);
  });

  test('without a certificate of its own the consumer cannot attach: exit 3', async () => {
    const r = await runCli([...devices(), '--out', tmpDir()]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /could not attach/);
    // the raw OpenSSL code comes with the fix
    assert.match(
      r.stderr,
      /^fleetload: consumer could not attach .*CERTIFICATE_REQUIRED.*; hint: .*--consumer-cert FILE --consumer-key FILE[^\n]*\n$/,
    );
  });

  test('--consumer-cert without its key, or not a certificate: exit 2 naming the flag', async () => {
    const r = await runCli([
      ...devices(),
      '--consumer-cert',
      join(certs, 'dev-000003.pem'),
      '--out',
      tmpDir(),
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /consumerCert: needs --consumer-key too/);
    const bad = await runCli([
      ...devices(),
      '--consumer-cert',
      join(certs, 'dev-000003.key'),
      '--consumer-key',
      join(certs, 'dev-000003.key'),
      '--out',
      tmpDir(),
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /dev-000003\.key is not a PEM certificate/);
  });
});

/** The shell words of a command line: plain words and '…' quoted ones (all the README's examples use). */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => (m[1] ?? m[2]) as string);
}

/** The mTLS guide's example: its commands (continuations joined) and its mosquitto.conf settings. */
function readmeMtlsExample(): { commands: string[][]; conf: string[] } {
  const readme = readFileSync(join(repoRoot, 'docs', 'guide', 'mtls.md'), 'utf8');
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .find((b) => b.includes('fleetload certs') && b.includes('require_certificate'));
  assert.ok(block, 'the mTLS guide has the example');
  const lines = block.replace(/\\\n\s*/g, '').split('\n');
  const commands = lines.filter((l) => l.startsWith('npx fleetload ')).map((l) => words(l).slice(2));
  // the here-document: cat > mosquitto.conf <<'EOF' … EOF
  const start = lines.findIndex((l) => l.startsWith('cat > mosquitto.conf'));
  const conf = lines.slice(start + 1, lines.indexOf('EOF', start)).map((l) => l.trim());
  return { commands, conf };
}

describe('the mTLS guide’s example, as printed, against a Mosquitto that runs as user mosquitto', {
  skip: skipUnless('mosquitto'),
}, () => {
  test('certs, the documented mosquitto.conf, then the run: every device and the consumer connect, exit 0', async () => {
    const { commands, conf } = readmeMtlsExample();
    assert.equal(commands.length, 2, JSON.stringify(commands));
    const [certsCmd, runCmd] = commands as [string[], string[]];
    assert.deepEqual(conf, [
      'listener 8883',
      'certfile certs/server.pem',
      'keyfile certs/server.key',
      'cafile certs/ca.pem',
      'require_certificate true',
      'use_identity_as_username true',
    ]);
    const cwd = tmpDir('fleetload-readme-mtls-');
    // the user mosquitto reads the files: the folder must be open to it, as a project folder is
    chmodSync(cwd, 0o755);
    const made = await runCli(certsCmd, { cwd });
    assert.equal(made.code, 0, made.stderr);
    assert.equal(statSync(join(cwd, 'certs', 'server.key')).mode & 0o777, 0o644);
    assert.equal(statSync(join(cwd, 'certs', 'consumer.key')).mode & 0o777, 0o600);
    const broker = await startMosquitto({
      tls: {
        certfile: join(cwd, 'certs', 'server.pem'),
        keyfile: join(cwd, 'certs', 'server.key'),
        cafile: join(cwd, 'certs', 'ca.pem'),
        requireCertificate: true,
      },
      extraConfig: 'use_identity_as_username true',
      dropPrivileges: true,
    });
    try {
      const port = String(broker.tlsPort);
      const args = runCmd.map((w) => w.replace('mqtts://localhost:8883', `mqtts://localhost:${port}`));
      assert.ok(args.includes(`mqtts://localhost:${port}`), args.join(' '));
      const r = await runCli([...args, '-r', '100', '--headless', '--out', 'res'], { cwd });
      assert.equal(r.code, 0, r.stderr + r.stdout + broker.output());
      const s = summaryIn(join(cwd, 'res'));
      assert.equal(s.devices.connectedPeak, 100);
      assert.ok(s.messages.received > 0);
      assert.equal(s.messages.lost, 0);
    } finally {
      await broker.stop();
    }
  });

  test('without --readable-server-key, server.key is 0600 and certs says why and what to do', async () => {
    const cwd = tmpDir();
    const r = await runCli(['certs', '--devices', '1', '--out', 'certs', '--server-cert', 'localhost'], {
      cwd,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(join(cwd, 'certs', 'server.key')).mode & 0o777, 0o600);
    assert.match(
      r.stdout,
      /server\.key is readable only by you .*user mosquitto.*chown.*--readable-server-key/s,
    );
    assert.match(r.stdout, /--consumer-cert certs\/consumer\.pem --consumer-key certs\/consumer\.key/);
  });
});
