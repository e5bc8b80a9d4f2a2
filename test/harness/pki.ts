/**
 * Throwaway PKI for tests. The implementation is shared with `meterlink demo` (agent/demo/pki.ts); this
 * module keeps the harness's import path and names.
 */
import { makeCa as makeDemoCa, type Ca } from '../../agent/demo/pki.js';

export { issueCert, writeIssued } from '../../agent/demo/pki.js';
export type { Ca, CertFiles, Issued, IssueOptions } from '../../agent/demo/pki.js';

export function makeCa(name = 'meterlink test CA'): Promise<Ca> {
  return makeDemoCa(name);
}
