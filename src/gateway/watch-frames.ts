/**
 * How a watch answer separates its events, read from its content type. kube-apiserver writes JSON
 * watch events one per line (the JSON encoder escapes newlines inside strings, so a newline byte only
 * ever ends an event), and protobuf ones (`application/vnd.kubernetes.protobuf;stream=watch`) each
 * behind a 4-byte big-endian length. Other encodings (CBOR sequences) are not recognised: undefined.
 */
export type WatchFraming = 'lines' | 'length-prefixed';

export function watchFraming(contentType: string | undefined): WatchFraming | undefined {
  const [type = '', ...params] = (contentType ?? '').toLowerCase().split(';').map((p) => p.trim());
  if (type === 'application/json') return 'lines';
  if (type === 'application/vnd.kubernetes.protobuf' && params.includes('stream=watch')) return 'length-prefixed';
  return undefined;
}

const LENGTH_BYTES = 4;

/** How many bytes at the start of `bytes` are whole events: where a watch can be ended without cutting one. */
export function wholeEventsLength(framing: WatchFraming, bytes: Uint8Array): number {
  if (framing === 'lines') return bytes.lastIndexOf(0x0a) + 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = 0;
  while (end + LENGTH_BYTES <= bytes.length) {
    const next = end + LENGTH_BYTES + view.getUint32(end);
    if (next > bytes.length) break;
    end = next;
  }
  return end;
}
