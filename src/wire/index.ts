/**
 * The wire format between producer and consumer (DESIGN.md "Telemetry on the wire"), in one place: the engine
 * imports the encoders, the consumer the decoders, and both the names, limits and versions, so the two sides
 * cannot drift apart. Each message carries `deviceId`, `seq`, `ts` (scheduled send time), `runId` and, from
 * fleetload, `sentTs` (actual send time), in one of three encodings:
 * - JSON fields (default; src/wire/json.ts): text or byte-by-byte encoders, a decoder for any field paths;
 * - MQTT 5 user properties (src/wire/properties.ts): the payload is left to the user;
 * - a binary header, version 1 (without sentTs) or 2 (with), in front of the payload (src/wire/binary.ts).
 * `makeDecoder` (src/wire/decode.ts) reads any of them, chosen per format or by the first bytes (`auto`).
 */
export * from './binary.js';
export * from './decode.js';
export * from './json.js';
export * from './meta.js';
export * from './properties.js';
