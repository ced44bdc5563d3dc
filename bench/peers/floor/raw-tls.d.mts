/** Types of raw-tls.mjs (for bench/tls-floor.ts). */
import type tls from 'node:tls';

/** A request object of Node's internal bindings: `oncomplete(status)` when it is done. */
export interface Req {
  oncomplete?: (status: number) => void;
  handle?: unknown;
}
export interface TcpHandle {
  connect(req: Req, host: string, port: number): number;
  setNoDelay(on: boolean): number;
  close(cb?: () => void): void;
}
export interface TlsHandle {
  writeBuffer(req: Req, b: Buffer): number;
}
export const tcp: {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => Req;
  constants: { SOCKET: number };
};
export const stream: {
  WriteWrap: new () => Req;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
};
export function secureHandle(
  h: TcpHandle,
  secureContext: tls.SecureContext,
  readBuffer: Uint8Array,
  on: { secure(ok: boolean): void; read(): void; ticket?(): void },
): TlsHandle;
export function connectAll(
  n: number,
  inflight: number,
  open: (i: number, settle: (ok: boolean) => void) => void,
): Promise<number>;
export function connectPacket(id: string, keepaliveS: number): Buffer;
