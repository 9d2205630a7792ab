import { describe, expect, it } from 'vitest';
import { bearerOf, TOKEN_FILE_REREAD_MS } from '../../src/k8s/bearer.js';

describe('bearerOf', () => {
  it('gives a plain token as it is', () => {
    expect(bearerOf({ server: 'https://h', token: 'abc' })()).toBe('abc');
    expect(bearerOf({ server: 'https://h' })()).toBeUndefined();
  });

  it('reads a token file again once a minute, so a renewed ServiceAccount token is used', () => {
    let t = 0;
    let onDisk = 'first\n';
    const reads: string[] = [];
    const bearer = bearerOf({ server: 'https://h', token: 'first', tokenFile: '/sa/token' }, () => t, (f) => (reads.push(f), onDisk));
    expect(bearer()).toBe('first');
    onDisk = 'second';
    t = TOKEN_FILE_REREAD_MS - 1;
    expect(bearer()).toBe('first');
    t = TOKEN_FILE_REREAD_MS;
    expect(bearer()).toBe('second');
    expect(reads).toEqual(['/sa/token', '/sa/token']);
  });

  it('keeps the last token when the file cannot be read', () => {
    let t = 0;
    const bearer = bearerOf({ server: 'https://h', token: 'kept', tokenFile: '/sa/token' }, () => t, () => {
      throw new Error('ENOENT');
    });
    expect(bearer()).toBe('kept');
    t = 2 * TOKEN_FILE_REREAD_MS;
    expect(bearer()).toBe('kept');
  });
});
