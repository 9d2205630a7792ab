import { describe, expect, it } from 'vitest';
import { lines } from '../../src/k8s/client.js';

async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

const collect = async (source: AsyncIterable<Uint8Array>): Promise<string[]> => {
  const out: string[] = [];
  for await (const line of lines(source)) out.push(line);
  return out;
};

describe('watch stream lines', () => {
  it('decodes a multibyte character whose bytes arrive in different chunks', async () => {
    const event = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'x', annotations: { note: 'café 🚀 日本' } } } });
    const bytes = Buffer.from(`${event}\n${event}\n`);
    // Split inside "é" (2 bytes), inside "🚀" (4 bytes) and inside "日" (3 bytes).
    const cuts = [bytes.indexOf(Buffer.from('é')) + 1, bytes.indexOf(Buffer.from('🚀')) + 2, bytes.indexOf(Buffer.from('日')) + 1];
    const parts: Uint8Array[] = [];
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      parts.push(bytes.subarray(from, cut));
      from = cut;
    }
    expect(await collect(chunks(...parts))).toEqual([event, event]);
  });

  it('decodes a stream that arrives one byte at a time', async () => {
    const text = '{"a":"ü"}\n{"b":"€"}\n';
    const bytes = Buffer.from(text);
    expect(await collect(chunks(...[...bytes].map((b) => Uint8Array.of(b))))).toEqual(['{"a":"ü"}', '{"b":"€"}']);
  });

  it('yields several lines of one chunk, and a last line without a newline', async () => {
    expect(await collect(chunks(Buffer.from('one\ntwo\nthr'), Buffer.from('ee')))).toEqual(['one', 'two', 'three']);
  });

  it('rejects bytes that are not UTF-8 rather than passing on replacement characters', async () => {
    await expect(collect(chunks(Uint8Array.of(0x7b, 0xff, 0x7d, 0x0a)))).rejects.toThrow(TypeError);
  });
});
