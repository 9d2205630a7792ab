import { describe, expect, it } from 'vitest';
import { watchFraming, wholeEventsLength } from '../../src/gateway/watch-frames.js';

const event = (name: string): string => `${JSON.stringify({ type: 'ADDED', object: { kind: 'ConfigMap', metadata: { name }, data: { text: 'a\nb' } } })}\n`;

/** A protobuf watch frame: 4-byte big-endian length, then that many bytes. */
const frame = (n: number): Buffer => {
  const b = Buffer.alloc(4 + n, 0x0a);
  b.writeUInt32BE(n, 0);
  return b;
};

describe('watch framing from the content type', () => {
  it.each([
    ['application/json', 'lines'],
    ['application/json;as=Table;v=v1;g=meta.k8s.io', 'lines'],
    ['Application/JSON; charset=utf-8', 'lines'],
    ['application/vnd.kubernetes.protobuf;stream=watch', 'length-prefixed'],
    ['application/vnd.kubernetes.protobuf; stream=watch', 'length-prefixed'],
    ['application/vnd.kubernetes.protobuf', undefined],
    ['application/cbor-seq', undefined],
    ['text/plain', undefined],
    [undefined, undefined],
  ])('%s is %s', (type, framing) => {
    expect(watchFraming(type)).toBe(framing);
  });
});

describe('where the last whole watch event ends', () => {
  it('JSON: after the last newline, which a newline inside a string never is (it is escaped)', () => {
    const two = event('one') + event('two');
    expect(event('one')).not.toContain('a\nb');
    expect(wholeEventsLength('lines', Buffer.from(two))).toBe(Buffer.byteLength(two));
    expect(wholeEventsLength('lines', Buffer.from(two + event('three').slice(0, 20)))).toBe(Buffer.byteLength(two));
  });

  it('JSON: nothing while the first event is incomplete', () => {
    expect(wholeEventsLength('lines', Buffer.from(event('one').slice(0, -1)))).toBe(0);
    expect(wholeEventsLength('lines', Buffer.alloc(0))).toBe(0);
  });

  it('protobuf: whole frames only, whatever bytes they hold (newlines included)', () => {
    const whole = Buffer.concat([frame(5), frame(0), frame(300)]);
    expect(wholeEventsLength('length-prefixed', whole)).toBe(whole.length);
    expect(wholeEventsLength('length-prefixed', Buffer.concat([whole, frame(10).subarray(0, 7)]))).toBe(whole.length);
    // A length cut in two is not a frame yet.
    expect(wholeEventsLength('length-prefixed', Buffer.concat([whole, frame(10).subarray(0, 2)]))).toBe(whole.length);
    expect(wholeEventsLength('length-prefixed', frame(10).subarray(0, 13))).toBe(0);
  });

  it('protobuf: reads lengths from a view into a larger buffer', () => {
    const big = Buffer.concat([Buffer.from('xxxx'), frame(3), frame(4).subarray(0, 5)]);
    expect(wholeEventsLength('length-prefixed', big.subarray(4))).toBe(7);
  });

  it('every cut of a stream keeps exactly the events before it', () => {
    const events = [event('a'), event('bb'), event('ccc')];
    const bytes = Buffer.from(events.join(''));
    const ends = events.map((_, i) => Buffer.byteLength(events.slice(0, i + 1).join('')));
    for (let cut = 0; cut <= bytes.length; cut++) {
      const expected = Math.max(0, ...ends.filter((e) => e <= cut));
      expect(wholeEventsLength('lines', bytes.subarray(0, cut)), `cut at ${cut}`).toBe(expected);
    }
  });
});
