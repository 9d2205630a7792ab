import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRequestInfo, pathProblem, nameProblem, type ResourceRequestInfo } from '../../src/gateway/request-info.js';
import { hostPodPath, isHostPodRequest, tenantWords } from '../../src/gateway/route.js';
import { Translator } from '../../src/sync/translate.js';

const t = new Translator('team-a');
const info = (method: string, url: string) => parseRequestInfo(method, url) as ResourceRequestInfo;

describe('hostPodPath', () => {
  it('names the twin in the host namespace, with only the subresource query parameters', () => {
    const url = '/api/v1/namespaces/dev/pods/web/log?container=c&follow=true&insecureSkipTLSVerifyBackend=true&x=1';
    expect(hostPodPath(t, info('GET', url), url)).toBe('/api/v1/namespaces/kplex-team-a/pods/web-x-dev-x-team-a/log?container=c&follow=true');
    const exec = '/api/v1/namespaces/dev/pods/web/exec?command=sh&command=-c&command=id%3Bls&stdin=true&tty=true';
    expect(hostPodPath(t, info('POST', exec), exec)).toBe('/api/v1/namespaces/kplex-team-a/pods/web-x-dev-x-team-a/exec?command=sh&command=-c&command=id%3Bls&stdin=true&tty=true');
  });

  it('goes only to pods and only to log, exec, attach and portforward', () => {
    expect(isHostPodRequest(info('GET', '/api/v1/namespaces/dev/pods/web/log'))).toBe(true);
    expect(isHostPodRequest(info('GET', '/api/v1/namespaces/dev/pods/web/proxy'))).toBe(false);
    expect(isHostPodRequest(info('GET', '/api/v1/namespaces/dev/services/web/log'))).toBe(false);
    expect(isHostPodRequest(info('GET', '/apis/x.io/v1/namespaces/dev/pods/web/log'))).toBe(false);
    expect(isHostPodRequest(info('GET', '/api/v1/namespaces/dev/pods/constructor/constructor'))).toBe(false);
  });

  it('whatever a tenant sends, a URL that passes validation reaches only its own twin, same subresource', () => {
    const segment = fc.oneof(fc.string(), fc.constantFrom('..', '.', '%2F', '%3F', '%23', '?', '#', '/', '%2e%2e', 'exec', 'web'));
    fc.assert(
      fc.property(segment, segment, fc.constantFrom('log', 'exec', 'attach', 'portforward'), fc.string(), (ns, name, sub, query) => {
        const url = `/api/v1/namespaces/${ns}/pods/${name}/${sub}?${query}`;
        let parsed;
        try {
          if (pathProblem(url)) return;
          parsed = info('GET', url);
        } catch {
          return;
        }
        if (nameProblem(parsed) || !isHostPodRequest(parsed)) return;
        const host = hostPodPath(t, parsed, url);
        const hostInfo = info('GET', host);
        expect(pathProblem(host)).toBeUndefined();
        expect(hostInfo).toMatchObject({ namespace: 'kplex-team-a', resource: 'pods', subresource: sub, name: t.name(parsed.namespace, parsed.name, 'Pod'), parts: [] });
      }),
      { numRuns: 2000 },
    );
  });
});

describe('tenantWords', () => {
  it("puts the tenant's names back into a host refusal", () => {
    const rewrite = tenantWords(t, info('GET', '/api/v1/namespaces/dev/pods/web/log'));
    expect(rewrite('{"message":"container \\"c\\" in pod \\"web-x-dev-x-team-a\\" is waiting to start","details":{"namespace":"kplex-team-a"}}')).toBe(
      '{"message":"container \\"c\\" in pod \\"web\\" is waiting to start","details":{"namespace":"dev"}}',
    );
  });
});

describe('the pipeline', () => {
  it("has the design's stages, in the design's order", async () => {
    const { PIPELINE } = await import('../../src/gateway/pipeline.js');
    expect(PIPELINE.stages).toEqual(['authenticate', 'request info', 'wake', 'authorize', 'admit', 'route']);
  });
});
