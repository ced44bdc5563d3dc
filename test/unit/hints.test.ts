import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainOpenSsl, withTlsHint } from '../../src/cli/hints.js';

const OPENSSL =
  '80FCD08A217F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:' +
  '../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n';

test('a consumer refused for want of a client certificate: one line, the code kept, the flags named', () => {
  const m = withTlsHint(
    `consumer could not attach to mqtts://b:8883: ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED ${OPENSSL}`,
  );
  assert.doesNotMatch(m, /\n|80FCD08A|rec_layer/);
  assert.match(m, /ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED \(tlsv13 alert certificate required\); hint: /);
  assert.match(m, /--consumer-cert FILE --consumer-key FILE \(fleetload certs writes consumer\.pem/);
});

test('devices get the device flags; other TLS codes get their own fix; other messages are left alone', () => {
  const d = withTlsHint(
    'no device could connect to mqtts://b:8883: tls ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED (x)',
  );
  assert.match(
    d,
    /hint: the broker requires a client certificate: give the devices one with --cert and --key/,
  );
  assert.match(withTlsHint('no device could connect to x: tls ERR_SSL_TLSV1_ALERT_UNKNOWN_CA (y)'), /cafile/);
  assert.match(
    withTlsHint('consumer could not attach to x: DEPTH_ZERO_SELF_SIGNED_CERT self-signed'),
    /--ca FILE/,
  );
  assert.match(
    withTlsHint('no device could connect to x: ERR_TLS_CERT_ALTNAME_INVALID'),
    /--servername NAME/,
  );
  assert.match(
    withTlsHint('consumer could not attach to x: ERR_SSL_WRONG_VERSION_NUMBER'),
    /does not speak TLS/,
  );
  const plain = 'no device could connect to mqtt://b:1883: connect ECONNREFUSED (refused)';
  assert.equal(withTlsHint(plain), plain);
  const once = withTlsHint('consumer could not attach: CERT_HAS_EXPIRED');
  assert.equal(withTlsHint(once), once, 'a hint is added once');
  assert.equal(plainOpenSsl('a\nb'), 'a b');
});

test('a TLS version the broker does not speak: the hint names --tls-version, for devices and consumer', () => {
  const d = withTlsHint(
    'no device could connect to mqtts://b:8883: tls ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION (x)',
  );
  assert.match(d, /hint: the broker does not speak the TLS version asked for: change --tls-version/);
  const c = withTlsHint(
    'consumer could not attach to mqtts://b:8883: EPROTO write EPROTO 809CC27CCF7F0000:error:0A00042E:SSL ' +
      'routines:ssl3_read_bytes:tlsv1 alert protocol version:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:' +
      '1601:SSL alert number 70\n',
  );
  assert.match(c, /\(tlsv1 alert protocol version\); hint: .*--tls-version \(it applies to the consumer too/);
  assert.match(withTlsHint('no device could connect to x: ERR_SSL_UNSUPPORTED_PROTOCOL'), /--tls-version/);
});
