import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/**
 * The gateway image is described twice: by the Dockerfile (for those with a container engine) and by
 * scripts/gateway-image.sh (which builds it here, where there is none). They must put the same files in
 * the same places, run as the same user from the same folder, and start the same command.
 */
describe('the gateway image, built by the Dockerfile or by the script', () => {
  const dockerfile = readFileSync(path.join(packageRoot, 'Dockerfile'), 'utf8');
  const script = readFileSync(path.join(packageRoot, 'scripts', 'gateway-image.sh'), 'utf8');
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const scriptValue = (name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(script)?.[1]?.replace(/^'|'$/g, '') ?? '';

  it('copy the same files into /app', () => {
    const copied = [...finalStage.matchAll(/^COPY (?:--from=\S+ )?(\S+) (\S+)$/gm)].map(([, from, to]) => (to === './' ? path.basename(from!) : to!.replace(/^\.\//, '')));
    const listed = scriptValue('APP_FILES').replace(/^\(|\)$/g, '').split(' ');
    expect(copied.sort()).toEqual(listed.sort());
    expect(finalStage).toMatch(/^WORKDIR \/app$/m);
    expect(script).toMatch(/write_image gateway "\$REF" "\$root" "\$ENTRYPOINT" "\$CMD" "\$APP_USER" \/app/);
  });

  it('run as the same user, with the same entrypoint and arguments', () => {
    expect(/^USER (\S+)$/m.exec(finalStage)?.[1]).toBe(scriptValue('APP_USER'));
    const json = (text: string): unknown => JSON.parse(text);
    expect(json(/^ENTRYPOINT (.*)$/m.exec(finalStage)![1]!)).toEqual(json(scriptValue('ENTRYPOINT')));
    expect(json(/^CMD (.*)$/m.exec(finalStage)![1]!)).toEqual(json(scriptValue('CMD')));
  });
});
