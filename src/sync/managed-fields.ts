// Who owns a twin's fields on the host. Pure; the twin writer (twins.ts) acts on it.
//
// kplex writes twins by server-side apply, so that a field the tenant drops from an object goes from
// its twin too: apply removes what its manager applied before and applies no more. But the host's
// field manager keeps a manager's fields from a create or update (operation Update) apart from its
// applied ones (operation Apply), and apply never removes the former. A twin made by a plain create
// (a Service made on the host first, so the tenant stores the ClusterIP the host chose) would keep
// every field of its first version for good: a port the tenant changes from 80 to 8080 is added beside
// the old one (the host then refuses the twin: two ports named "http"), a dropped label stays.

/** One entry of `metadata.managedFields`, as far as ownership goes. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
}

export type JsonPatch = { op: 'test' | 'replace'; path: string; value: unknown }[];

/**
 * The JSON patch that turns `manager`'s fields from a create into fields it applied, so its next
 * server-side apply owns and can remove them; undefined when there is nothing to turn (no such
 * entry, or one it applied already, with which the host would not merge it). The patch tests the
 * entry it changes, so a twin changed in between is refused, not miswritten.
 */
export function createdAsApplied(entries: readonly ManagedFieldsEntry[], manager: string): JsonPatch | undefined {
  const own = (e: ManagedFieldsEntry, operation: string) => e.manager === manager && e.operation === operation && !e.subresource;
  const i = entries.findIndex((e) => own(e, 'Update'));
  if (i < 0 || entries.some((e) => own(e, 'Apply'))) return undefined;
  const at = `/metadata/managedFields/${i}`;
  return [
    { op: 'test', path: `${at}/manager`, value: manager },
    { op: 'test', path: `${at}/operation`, value: 'Update' },
    { op: 'replace', path: `${at}/operation`, value: 'Apply' },
  ];
}
