import https from 'node:https';
import type { ClientRequest } from 'node:http';
import type { ClusterAccess } from '../../src/k8s/client.js';

interface WatchEvent {
  type: string;
  object: { metadata?: { name?: string; resourceVersion?: string }; message?: string };
}

/**
 * A watch that behaves as a client-go reflector does once it has listed: it watches from a
 * resourceVersion, and when the answer ends cleanly watches again from the last resourceVersion it got,
 * each time on a connection of its own (so through the load balancer, to any replica). A stream that
 * breaks instead (cut mid-event, reset, refused, an ERROR event) is written down in `broken` and watched
 * again as well, so a test can tell a clean hand-over from a lucky one.
 */
export class ResumingWatch {
  /** Names of the objects an ADDED event was seen for. */
  readonly added = new Set<string>();
  /** Names of the objects a relist returned (after a 410: the resourceVersion was older than the server keeps). */
  readonly listed = new Set<string>();
  relists = 0;
  /** Watches that ended cleanly after whole events (and were watched again). */
  cleanEnds = 0;
  readonly broken: string[] = [];
  private request: ClientRequest | undefined;
  private stopped = false;

  constructor(
    private readonly access: ClusterAccess,
    /** A collection's path below the server URL, e.g. /api/v1/namespaces/default/configmaps. */
    private readonly path: string,
    private resourceVersion: string,
  ) {}

  start(): void {
    if (this.stopped) return;
    let finished = false;
    let expired = false;
    const again = (problem?: string): void => {
      if (finished || this.stopped) return;
      finished = true;
      if (problem) this.broken.push(problem);
      else if (!expired) this.cleanEnds++;
      // As a reflector does: a resourceVersion the server no longer has is listed again, then watched from.
      if (expired) void this.relist().then(() => this.start(), (err: Error) => again(`relist failed: ${err.message}`));
      else setTimeout(() => this.start(), problem ? 1000 : 0);
    };
    const url = new URL(`${this.access.server}${this.path}`);
    url.searchParams.set('watch', 'true');
    url.searchParams.set('allowWatchBookmarks', 'true');
    url.searchParams.set('resourceVersion', this.resourceVersion);
    const req = https.request(url, { agent: false, ca: this.access.ca, headers: { authorization: `Bearer ${this.access.token}`, accept: 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      let held = '';
      res.on('data', (text: string) => {
        held += text;
        for (let nl = held.indexOf('\n'); nl >= 0; nl = held.indexOf('\n')) {
          const line = held.slice(0, nl);
          held = held.slice(nl + 1);
          if (res.statusCode !== 200) continue;
          const event = JSON.parse(line) as WatchEvent;
          if (event.type === 'ERROR') {
            this.broken.push(`ERROR event: ${event.object.message}`);
            if ((event.object as { code?: number }).code === 410) expired = true;
            continue;
          }
          if (event.type === 'ADDED' && event.object.metadata?.name) this.added.add(event.object.metadata.name);
          if (event.object.metadata?.resourceVersion) this.resourceVersion = event.object.metadata.resourceVersion;
        }
      });
      res.on('end', () => {
        if (res.statusCode !== 200) again(`HTTP ${res.statusCode}: ${held}`);
        else if (!res.complete || held !== '') again(`ended mid-event (${held.length} bytes of one)`);
        else again();
      });
      res.on('error', (err) => again(`stream broke: ${err.message}`));
    });
    req.on('error', (err) => again(`request failed: ${err.message}`));
    req.end();
    this.request = req;
  }

  private relist(): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = https.request(new URL(`${this.access.server}${this.path}`), { agent: false, ca: this.access.ca, headers: { authorization: `Bearer ${this.access.token}`, accept: 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text}`));
          const list = JSON.parse(text) as { metadata: { resourceVersion: string }; items: { metadata: { name: string } }[] };
          for (const o of list.items) this.listed.add(o.metadata.name);
          this.resourceVersion = list.metadata.resourceVersion;
          this.relists++;
          resolve();
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  stop(): void {
    this.stopped = true;
    this.request?.destroy();
  }
}
