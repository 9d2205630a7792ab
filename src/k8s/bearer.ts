import { readFileSync } from 'node:fs';
import type { ClusterAccess } from './client.js';

/** How often a token file is read again: the kubelet renews a projected token well before it expires (client-go also re-reads it every minute). */
export const TOKEN_FILE_REREAD_MS = 60_000;

/**
 * The bearer token of `access`, as a function called for every request: the token itself, or, with a
 * token file (a pod's ServiceAccount token), what the file holds now, read at most once a minute, so a
 * gateway running for months keeps a valid credential. A file that cannot be read keeps the last token:
 * the API server's refusal says more than a crash would.
 */
export function bearerOf(access: ClusterAccess, now: () => number = Date.now, read: (file: string) => string = (f) => readFileSync(f, 'utf8')): () => string | undefined {
  const file = access.tokenFile;
  if (!file) return () => access.token;
  let token = access.token;
  let readAt = -Infinity;
  return () => {
    if (now() - readAt >= TOKEN_FILE_REREAD_MS) {
      readAt = now();
      try {
        token = read(file).trim();
      } catch (err) {
        // Keep the last token: the kubelet writes the file by an atomic rename, so a failed read is brief.
        process.emitWarning(`could not read the token file ${file}: ${(err as Error).message}`);
      }
    }
    return token;
  };
}
