import { describe, expect, it } from 'vitest';
import { warningHeader } from '../../src/gateway/mirror.js';

describe('Warning header', () => {
  it('quotes the text as kube-apiserver does, escaping quotes and backslashes', () => {
    expect(warningHeader('pods "web" is forbidden: exceeded quota: kplex-quota')).toBe('299 - "pods \\"web\\" is forbidden: exceeded quota: kplex-quota"');
    expect(warningHeader('a\\b')).toBe('299 - "a\\\\b"');
  });

  it('keeps the header a valid ASCII field value', () => {
    expect(warningHeader('line\nbreak µ')).toBe('299 - "line?break ?"');
  });
});
