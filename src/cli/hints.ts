/**
 * What to do about a TLS failure. OpenSSL and Node name TLS errors by code (`ERR_SSL_TLSV13_ALERT_CERTIFICATE_
 * REQUIRED`), which says what happened but not what to change; an unreachable-system message that carries one of
 * these codes gets one sentence naming the fix (the flag, the file). Who failed — the run's consumer or the
 * devices — decides which flag.
 */

interface Hint {
  code: RegExp;
  consumer: string;
  devices: string;
}

const HINTS: readonly Hint[] = [
  {
    code: /CERTIFICATE_REQUIRED|PEER_DID_NOT_RETURN_A_CERTIFICATE/i,
    consumer:
      'the broker requires a client certificate and the consumer has none: give it one with ' +
      '--consumer-cert FILE --consumer-key FILE (fleetload certs writes consumer.pem and consumer.key; ' +
      'fleetload consume takes --cert/--key), or use --consumer-host (another listener) or --consumer none',
    devices:
      'the broker requires a client certificate: give the devices one with --cert and --key ' +
      "(fleetload certs --devices N --out certs, then --cert 'certs/{deviceId}.pem' --key 'certs/{deviceId}.key')",
  },
  {
    code: /ALERT_UNKNOWN_CA/i,
    consumer:
      "the broker does not trust the CA that signed the consumer's certificate: configure the broker with that CA " +
      '(Mosquitto: cafile) or give the consumer a certificate from the broker’s CA',
    devices:
      "the broker does not trust the CA that signed the devices' certificates: configure the broker with that CA " +
      '(Mosquitto: cafile certs/ca.pem)',
  },
  {
    code: /ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE_(UNKNOWN|EXPIRED|REVOKED)/i,
    consumer: 'the broker refused the consumer’s client certificate: check --consumer-cert/--consumer-key',
    devices: 'the broker refused the client certificate: check --cert/--key (and that it is not expired)',
  },
  {
    code: /SELF_SIGNED|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/i,
    consumer:
      "the broker's certificate is not signed by a CA this process trusts: pass --ca FILE (the CA that signed it), " +
      'or --insecure for a test broker',
    devices:
      "the broker's certificate is not signed by a CA this process trusts: pass --ca FILE (the CA that signed it), " +
      'or --insecure for a test broker',
  },
  {
    code: /ERR_TLS_CERT_ALTNAME_INVALID/i,
    consumer:
      "the broker's certificate is not valid for this host name: use --servername NAME (a name on the certificate)",
    devices:
      "the broker's certificate is not valid for this host name: use --servername NAME (a name on the certificate)",
  },
  {
    code: /CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/i,
    consumer:
      "the broker's certificate is expired or not yet valid: renew it (or check this machine's clock)",
    devices: "the broker's certificate is expired or not yet valid: renew it (or check this machine's clock)",
  },
  {
    code: /ALERT[_ ]PROTOCOL[_ ]VERSION|UNSUPPORTED[_ ]PROTOCOL|NO[_ ]PROTOCOLS[_ ]AVAILABLE|VERSION[_ ]TOO[_ ](LOW|HIGH)/i,
    consumer:
      'the broker does not speak the TLS version asked for: change --tls-version (it applies to the consumer too; ' +
      'auto lets both sides agree)',
    devices:
      'the broker does not speak the TLS version asked for: change --tls-version (auto lets both sides agree; ' +
      'a broker limited to TLS 1.3 refuses 1.2)',
  },
  {
    code: /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG/i,
    consumer: 'the port does not speak TLS: use mqtt:// (or ws://) for it, or the port of the TLS listener',
    devices: 'the port does not speak TLS: use mqtt:// (or ws://) for it, or the port of the TLS listener',
  },
];

/**
 * OpenSSL's own text (`80FCD08A217F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate
 * required:../deps/openssl/…/rec_layer_s3.c:1601:SSL alert number 116` and a newline) shortened to its reason.
 */
export function plainOpenSsl(message: string): string {
  return message
    .replace(
      /\b[0-9A-F]{8,}:error:[0-9A-F]+:[^:\n]*:[^:\n]*:([^:\n]*):[^\s:]+:\d+:(SSL alert number \d+)?/g,
      '($1)',
    )
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}

/** The message with a `; hint: …` naming the fix, when it carries a TLS error code; else the message as is. */
export function withTlsHint(message: string): string {
  if (/; hint: /.test(message)) return message;
  const hint = HINTS.find((h) => h.code.test(message));
  if (!hint) return message;
  const who = /^consumer\b|consumer could not attach/.test(message) ? hint.consumer : hint.devices;
  return `${plainOpenSsl(message)}; hint: ${who}`;
}
