import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill loaded first
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { FleetloadError } from '../errors.js';
import { outProblem, readErrorWords, readInputFile } from '../scenario/files.js';
import type { ScenarioOption } from '../scenario/options.js';
import { compileTemplate, templateProblems } from '../scenario/template.js';
import { tokenizeFlags } from './args.js';
import type { CliIo } from './commands.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;

/**
 * `fleetload certs`: a test CA and one client certificate per device (CN = device id), ECDSA P-256, keys as
 * PKCS#8 PEM (what Node's tls, OpenSSL and Mosquitto read). Optionally a server certificate for a test broker.
 * The device id template and index range match `fleetload run`'s (`dev-{index:6}`, index from 0), so
 * `--cert DIR/{deviceId}.pem --key DIR/{deviceId}.key` finds them.
 */

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const CERTS_HELP = `Usage: fleetload certs --devices N --out DIR [options]

Makes a test CA (DIR/ca.pem, DIR/ca.key), per device DIR/{deviceId}.pem and DIR/{deviceId}.key
(CN = device id; ECDSA P-256; keys as PKCS#8 PEM, readable only by you), and one for the run's own consumer,
DIR/consumer.pem and DIR/consumer.key (CN = fleetload-consumer). Use them with
  fleetload run --host mqtts://broker:8883 --ca DIR/ca.pem --cert 'DIR/{deviceId}.pem' --key 'DIR/{deviceId}.key' \
    --consumer-cert DIR/consumer.pem --consumer-key DIR/consumer.key
and give the broker DIR/ca.pem as the CA that signs client certificates (Mosquitto: cafile, require_certificate).

Options:
  -u, --devices N        number of devices (index 0 … N-1)                      (required)
      --out DIR          where to write (created if missing)                      (required)
      --device-id T      device id template, {index} or {index:6}         (default: dev-{index:6})
      --first N          index of the first device                                (default: 0)
      --days D           validity of the certificates, in days                    (default: 365)
      --ca-cert FILE     sign with this existing CA certificate (PEM) ...
      --ca-key FILE      ... and its private key (PEM); ca.key is then not written
      --server-cert NAME also make server.pem/server.key for a test broker, valid for NAME (a host name
                         or IP address; repeatable)
      --readable-server-key  write server.key readable by every user (mode 0644), for a broker that
                         starts as root and drops to its own user (Mosquitto: user mosquitto); a test
                         key only (default: 0600, readable only by you: chown it to the broker's user)
      --force            replace an existing CA in DIR
  -h, --help             show this help
`;

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const generateEcKeyPair = promisify(generateKeyPair);
const SIGN_EC = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** parallel key generations / signatures in flight (webcrypto runs them on the libuv pool) */
const CONCURRENCY = 64;
/** accept clocks a little behind ours */
const BACKDATE_MS = 60 * 60 * 1000;

export interface CertsOptions {
  devices: number;
  out: string;
  deviceId?: string;
  first?: number;
  days?: number;
  caCert?: string;
  caKey?: string;
  serverNames?: string[];
  /** server.key mode 0644 instead of 0600 (a broker that drops to its own user can read it) */
  readableServerKey?: boolean;
  force?: boolean;
}

export interface CertsResult {
  caCertPath: string;
  /** absent when an existing CA was used */
  caKeyPath: string | undefined;
  deviceIds: string[];
  /** the run's own consumer: CN fleetload-consumer */
  consumerCertPath: string;
  consumerKeyPath: string;
  serverCertPath: string | undefined;
  serverKeyPath: string | undefined;
  elapsedMs: number;
}

interface Ca {
  cert: x509.X509Certificate;
  key: CryptoKey;
  signing: Algorithm | EcdsaParams;
  /** AuthorityKeyIdentifier for every certificate it signs, made once */
  aki: x509.AuthorityKeyIdentifierExtension;
}

/** certs' flags, through the same tokenizer as run and consume (no environment variables). */
const CERTS_OPTIONS: readonly ScenarioOption[] = (
  [
    ['devices', 'devices', 'u', 'string'],
    ['out', 'out', undefined, 'string'],
    ['deviceId', 'device-id', undefined, 'string'],
    ['first', 'first', undefined, 'string'],
    ['days', 'days', undefined, 'string'],
    ['caCert', 'ca-cert', undefined, 'string'],
    ['caKey', 'ca-key', undefined, 'string'],
    ['serverCert', 'server-cert', undefined, 'list'],
    ['readableServerKey', 'readable-server-key', undefined, 'boolean'],
    ['force', 'force', undefined, 'boolean'],
  ] as const
).map(([key, flag, short, kind]) => ({ key, flag, short, env: '', kind }));

interface CertsFlags {
  devices?: string;
  out?: string;
  deviceId?: string;
  first?: string;
  days?: string;
  caCert?: string;
  caKey?: string;
  serverCert?: string[];
  readableServerKey?: boolean;
  force?: boolean;
}

export async function certsCmd(argv: string[], io: CliIo): Promise<number> {
  const t = tokenizeFlags(argv, CERTS_OPTIONS, 'certs');
  if (t.help) {
    io.stdout.write(CERTS_HELP);
    return 0;
  }
  const values = t.flags as CertsFlags;
  const problems = [...t.problems];
  for (const p of t.positionals) problems.push(`unexpected argument "${p}": certs takes flags only`);
  const int = (flag: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`--${flag}: must be a whole number from ${min} to ${max}, not "${text}"`);
    }
    return n;
  };
  const devices = int('devices', values.devices, 0, 1_000_000);
  const first = int('first', values.first, 0, Number.MAX_SAFE_INTEGER);
  const days = int('days', values.days, 1, 36_500);
  if (values.devices === undefined) problems.push('--devices N is required');
  if (values.out === undefined) problems.push('--out DIR is required');
  else if (values.out === '' || values.out.includes('\u0000'))
    problems.push('--out: must be a directory path');
  if (values.readableServerKey && values.serverCert === undefined) {
    problems.push('--readable-server-key: there is no server key without --server-cert NAME');
  }
  if (problems.length > 0) {
    const hint = problems.some((p) => p.includes('--help')) ? [] : ['see fleetload certs --help'];
    throw new FleetloadError('E_USAGE', [...problems, ...hint]);
  }
  // checked without writing: `mkdir -p` under /proc would never return
  const badOut = outProblem(values.out as string, undefined, io.cwd, 'cannot create');
  if (badOut) throw new FleetloadError('E_FILE', `--out: ${badOut}`);
  const r = await makeCerts(
    {
      devices: devices as number,
      out: resolve(io.cwd, values.out as string),
      ...(values.deviceId !== undefined ? { deviceId: values.deviceId } : {}),
      ...(first !== undefined ? { first } : {}),
      ...(days !== undefined ? { days } : {}),
      ...(values.caCert !== undefined ? { caCert: resolve(io.cwd, values.caCert) } : {}),
      ...(values.caKey !== undefined ? { caKey: resolve(io.cwd, values.caKey) } : {}),
      ...(values.serverCert !== undefined ? { serverNames: values.serverCert } : {}),
      readableServerKey: values.readableServerKey === true,
      force: values.force === true,
    },
    (done, total) => {
      if (io.stderr.isTTY) io.stderr.write(`\r${done}/${total} device certificates`);
    },
  );
  if (io.stderr.isTTY && r.deviceIds.length > 0) io.stderr.write('\n');
  const out = values.out as string;
  const ids = r.deviceIds;
  const range =
    ids.length === 0 ? 'no devices' : ids.length === 1 ? ids[0] : `${ids[0]} … ${ids[ids.length - 1]}`;
  io.stdout.write(
    `${r.caKeyPath ? 'new CA' : 'existing CA'} ${join(out, 'ca.pem')}; ${ids.length} device certificates (${range})` +
      `${r.serverCertPath ? `; server certificate ${join(out, 'server.pem')}` : ''} in ${(r.elapsedMs / 1000).toFixed(1)}s\n` +
      `use: fleetload run --host mqtts://HOST:8883 --ca ${join(out, 'ca.pem')} ` +
      `--cert '${join(out, '{deviceId}.pem')}' --key '${join(out, '{deviceId}.key')}'` +
      `${values.deviceId ? ` --device-id '${values.deviceId}'` : ''}` +
      ` --consumer-cert ${join(out, 'consumer.pem')} --consumer-key ${join(out, 'consumer.key')}\n` +
      (r.serverKeyPath && !values.readableServerKey
        ? `note: ${join(out, 'server.key')} is readable only by you (mode 0600); a broker started as root that ` +
          'drops to its own user (Mosquitto: user mosquitto) cannot read it: chown it to that user, or make it with ' +
          '--readable-server-key\n'
        : ''),
  );
  return 0;
}

/** Makes the CA (or loads one), the device certificates and the optional server certificate. */
export async function makeCerts(
  o: CertsOptions,
  progress?: (done: number, total: number) => void,
): Promise<CertsResult> {
  const started = performance.now();
  const deviceIds = checkedDeviceIds(o);
  const out = o.out;
  // an existing CA is input: checked before anything is written
  const existingCa =
    o.caCert !== undefined && o.caKey !== undefined ? await loadCa(o.caCert, o.caKey) : undefined;
  try {
    mkdirSync(out, { recursive: true });
  } catch (e) {
    throw new FleetloadError('E_FILE', `--out: cannot create ${out}: ${(e as Error).message}`, { cause: e });
  }
  const caCertPath = join(out, 'ca.pem');
  const now = Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + (o.days ?? 365) * 86_400_000);

  let ca: Ca;
  let caKeyPath: string | undefined;
  if (existingCa !== undefined && o.caCert !== undefined) {
    ca = existingCa;
    const pem = ca.cert.toString('pem');
    if (existsSync(caCertPath) && !o.force && resolve(o.caCert) !== caCertPath) {
      const current = readFileSync(caCertPath, 'utf8');
      if (!sameCert(current, pem)) {
        throw new FleetloadError(
          'E_FILE',
          `${caCertPath} exists and is another CA; use --force to replace it, or another --out`,
        );
      }
    }
    if (resolve(o.caCert) !== caCertPath) await writeFile(caCertPath, `${pem}\n`);
  } else {
    caKeyPath = join(out, 'ca.key');
    if (!o.force && (existsSync(caCertPath) || existsSync(caKeyPath))) {
      throw new FleetloadError(
        'E_FILE',
        `${out} already holds a CA (ca.pem/ca.key): reuse it with --ca-cert ${caCertPath} --ca-key ${caKeyPath}, ` +
          'or pass --force to replace it (certificates signed by the old CA stop working)',
      );
    }
    ca = await newCa(notBefore, notAfter);
    await writeFile(caCertPath, `${ca.cert.toString('pem')}\n`);
    await writeFile(caKeyPath, await pkcs8Pem(ca.key), { mode: 0o600 });
  }

  let done = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= deviceIds.length) return;
      const id = deviceIds[i] as string;
      const { certPem, keyPem } = await leaf(ca, [{ CN: [id] }], notBefore, notAfter, 'client', []);
      await Promise.all([
        writeFile(join(out, `${id}.pem`), certPem),
        writeFile(join(out, `${id}.key`), keyPem, { mode: 0o600 }),
      ]);
      done++;
      if (progress && (done % 500 === 0 || done === deviceIds.length)) progress(done, deviceIds.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, deviceIds.length) }, worker));

  // the run's own consumer, for a broker that requires client certificates (fleetload run --consumer-cert)
  const consumerCertPath = join(out, 'consumer.pem');
  const consumerKeyPath = join(out, 'consumer.key');
  const consumer = await leaf(ca, [{ CN: ['fleetload-consumer'] }], notBefore, notAfter, 'client', []);
  await writeFile(consumerCertPath, consumer.certPem);
  await writeFile(consumerKeyPath, consumer.keyPem, { mode: 0o600 });

  let serverCertPath: string | undefined;
  let serverKeyPath: string | undefined;
  const names = o.serverNames ?? [];
  if (names.length > 0) {
    const sans = names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }));
    const server = await leaf(ca, [{ CN: [names[0] as string] }], notBefore, notAfter, 'server', sans);
    serverCertPath = join(out, 'server.pem');
    serverKeyPath = join(out, 'server.key');
    await writeFile(serverCertPath, server.certPem);
    const mode = o.readableServerKey ? 0o644 : 0o600;
    await writeFile(serverKeyPath, server.keyPem, { mode });
    // writeFile's mode applies only to a new file (and through the umask): an existing key gets it too
    await chmod(serverKeyPath, mode);
  }
  return {
    caCertPath,
    caKeyPath,
    deviceIds,
    consumerCertPath,
    consumerKeyPath,
    serverCertPath,
    serverKeyPath,
    elapsedMs: performance.now() - started,
  };
}

/** The device ids of the options, after checking the options that need no file (exit 2 naming the flag). */
function checkedDeviceIds(o: CertsOptions): string[] {
  const template = o.deviceId ?? 'dev-{index:6}';
  const problems = templateProblems(template, ['index']).map((p) => `--device-id: ${p}`);
  if (!/\{index(:\d+)?\}/.test(template) && o.devices > 1) {
    problems.push(`--device-id: "${template}" has no {index}: every device would get the same id`);
  }
  if ((o.caCert === undefined) !== (o.caKey === undefined)) {
    problems.push('--ca-cert and --ca-key go together (the CA certificate and its private key)');
  }
  for (const n of o.serverNames ?? []) {
    if (n === '' || /[\s/]/.test(n)) problems.push(`--server-cert: "${n}" is not a host name or IP address`);
  }
  if (problems.length > 0) throw new FleetloadError('E_USAGE', problems);
  const idOf = compileTemplate(template);
  const first = o.first ?? 0;
  const deviceIds = Array.from({ length: o.devices }, (_, i) => idOf({ index: first + i }));
  // ca, server and consumer name fleetload's own files
  const reserved = new Set(['', '.', '..', 'ca', 'server', 'consumer']);
  for (const id of deviceIds) {
    if (reserved.has(id) || /[/\\\u0000]/.test(id)) {
      throw new FleetloadError('E_USAGE', `--device-id: "${id}" cannot be a file name here`);
    }
  }
  return deviceIds;
}

async function newCa(notBefore: Date, notAfter: Date): Promise<Ca> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: [{ CN: ['fleetload test CA'] }, { O: ['fleetload'] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGN_EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    cert,
    key: keys.privateKey,
    signing: SIGN_EC,
    aki: await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
  };
}

/** An existing CA: certificate and private key as PEM (PKCS#8, SEC1 EC or PKCS#1 RSA), checked to match. */
async function loadCa(certFile: string, keyFile: string): Promise<Ca> {
  const readText = (flag: string, file: string): string => {
    try {
      return readInputFile(file).toString('utf8');
    } catch (e) {
      throw new FleetloadError('E_FILE', `${flag}: cannot read ${file}: ${readErrorWords(e)}`, { cause: e });
    }
  };
  const certPem = readText('--ca-cert', certFile);
  const keyPem = readText('--ca-key', keyFile);
  let cert: x509.X509Certificate;
  let nodeCert: X509Certificate;
  try {
    nodeCert = new X509Certificate(certPem);
    cert = new x509.X509Certificate(nodeCert.raw);
  } catch (e) {
    throw new FleetloadError('E_FILE', `--ca-cert: ${certFile} is not a PEM certificate`, { cause: e });
  }
  if (!nodeCert.ca) throw new FleetloadError('E_FILE', `--ca-cert: ${certFile} is not a CA certificate`);
  let pkcs8: Buffer;
  let kind: string | undefined;
  let curve: string | undefined;
  try {
    const k = createPrivateKey(keyPem);
    kind = k.asymmetricKeyType;
    curve = k.asymmetricKeyDetails?.namedCurve;
    pkcs8 = k.export({ type: 'pkcs8', format: 'der' });
    const spki = createPublicKey(k).export({ type: 'spki', format: 'der' });
    if (!spki.equals(nodeCert.publicKey.export({ type: 'spki', format: 'der' }))) {
      throw new FleetloadError('E_FILE', `--ca-key: ${keyFile} is not the private key of ${certFile}`);
    }
  } catch (e) {
    if (e instanceof FleetloadError) throw e;
    throw new FleetloadError('E_FILE', `--ca-key: ${keyFile} is not a PEM private key`, { cause: e });
  }
  let importAlg: EcKeyImportParams | RsaHashedImportParams;
  let signing: Algorithm | EcdsaParams;
  if (kind === 'ec' && (curve === 'prime256v1' || curve === 'secp384r1')) {
    const namedCurve = curve === 'prime256v1' ? 'P-256' : 'P-384';
    importAlg = { name: 'ECDSA', namedCurve };
    signing = { name: 'ECDSA', hash: namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384' } as EcdsaParams;
  } else if (kind === 'rsa') {
    importAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    signing = { name: 'RSASSA-PKCS1-v1_5' };
  } else {
    throw new FleetloadError(
      'E_FILE',
      `--ca-key: ${keyFile} is a ${kind ?? 'unknown'}${curve ? ` ${curve}` : ''} key; use an EC P-256/P-384 or RSA CA`,
    );
  }
  const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlg, false, ['sign']);
  const aki = await x509.AuthorityKeyIdentifierExtension.create(
    await cert.publicKey.export(importAlg, ['verify']),
  );
  return { cert, key, signing, aki };
}

async function leaf(
  ca: Ca,
  subject: x509.JsonName,
  notBefore: Date,
  notAfter: Date,
  role: 'client' | 'server',
  sans: Array<{ type: 'dns' | 'ip'; value: string }>,
): Promise<{ certPem: string; keyPem: string }> {
  // Node's own key generation (libuv pool) and exports are several times faster than going through webcrypto
  // (encoded on the pool too: OpenSSL 3's encoders are slow enough to matter on the main thread at 10k keys)
  const keys = await generateEcKeyPair('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const spki = keys.publicKey;
  // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the 65-byte uncompressed P-256 point at the end)
  const keyId = createHash('sha1')
    .update(spki.subarray(spki.length - 65))
    .digest('hex');
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      role === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth,
    ]),
    ca.aki,
    new x509.SubjectKeyIdentifierExtension(keyId),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: spki,
    signingKey: ca.key,
    signingAlgorithm: ca.signing,
    extensions,
  });
  return {
    certPem: `${cert.toString('pem')}\n`,
    keyPem: keys.privateKey,
  };
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.endsWith('\n') ? b64 : `${b64}\n`}-----END PRIVATE KEY-----\n`;
}

/** 16 random bytes, positive (top bit clear), as hex: RFC 5280 §4.1.2.2 allows up to 20 octets. */
function serial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = ((b[0] as number) & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

function sameCert(a: string, b: string): boolean {
  try {
    return new X509Certificate(a).raw.equals(new X509Certificate(b).raw);
  } catch {
    return false;
  }
}
