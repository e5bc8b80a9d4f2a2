/**
 * A plain TLS handshake with the endpoint using the device's CA, certificate and key (node:tls), to say in
 * words why a connection fails. aws-crt reports some failures late or not at all (a server certificate
 * that does not chain to `cloud.ca` leaves the client silently retrying), so the connection runs this probe
 * when it has not connected for a while, and `meterlink provision check` uses it too.
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';

export interface TlsProbeOptions {
  host: string;
  port: number;
  caFile?: string;
  certFile: string;
  keyFile: string;
  /** SNI name; defaults to host. */
  servername?: string;
  alpn?: string[];
  timeoutMs?: number;
}

export type TlsProbeResult =
  | { ok: true; protocol: string | null; alpn: string | false; peerSubject: string }
  | { ok: false; code: string; message: string };

const hints: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    'the endpoint certificate does not chain to cloud.ca — is cloud.ca the right CA file?',
  SELF_SIGNED_CERT_IN_CHAIN:
    'the endpoint certificate does not chain to cloud.ca — is cloud.ca the right CA file?',
  DEPTH_ZERO_SELF_SIGNED_CERT:
    'the endpoint presents a self-signed certificate that cloud.ca does not contain',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    'the endpoint certificate does not chain to cloud.ca — is cloud.ca the right CA file?',
  CERT_HAS_EXPIRED: 'the endpoint certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the endpoint certificate is not for this host name — check cloud.endpoint',
  ECONNREFUSED: 'nothing listens on that host and port — check cloud.endpoint and cloud.port',
  ENOTFOUND: 'the host name does not resolve — check cloud.endpoint and DNS',
  ETIMEDOUT: 'no answer from the endpoint — check the network and firewall (try port 443 if 8883 is blocked)',
  ECONNRESET:
    'the endpoint closed the connection during the handshake — it refused the device certificate (not active, expired, or from an unregistered CA)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA:
    'the endpoint does not know the CA of the device certificate — is the certificate registered and active?',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    'the endpoint says the device certificate has expired — rotate it (meterlink provision rotate)',
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: 'the device key does not match the device certificate',
  ERR_OSSL_X509_KEY_VALUES_MISMATCH: 'the device key does not match the device certificate',
};

export function tlsHint(code: string): string {
  return hints[code] ?? 'TLS handshake failed';
}

export async function probeTls(opts: TlsProbeOptions): Promise<TlsProbeResult> {
  let ca: Buffer | undefined;
  let cert: Buffer;
  let key: Buffer;
  try {
    ca = opts.caFile ? await readFile(opts.caFile) : undefined;
    cert = await readFile(opts.certFile);
    key = await readFile(opts.keyFile);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      ok: false,
      code: e.code ?? 'READ_FAILED',
      message: `cannot read ${e.path ?? 'a TLS file'}: ${e.message}`,
    };
  }
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: TlsProbeResult) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(r);
    };
    const sock = connect({
      host: opts.host,
      port: opts.port,
      servername: opts.servername ?? (/^[\d.]+$/.test(opts.host) ? undefined : opts.host),
      ...(ca ? { ca } : {}),
      cert,
      key,
      ALPNProtocols: opts.alpn,
      minVersion: 'TLSv1.2',
      timeout: opts.timeoutMs ?? 10_000,
    });
    sock.once('secureConnect', () => {
      // A server that rejects our certificate may only say so after its handshake finishes (TLS 1.3):
      // wait briefly for an alert before calling it a success.
      const peer = sock.getPeerCertificate();
      const ok = {
        ok: true as const,
        protocol: sock.getProtocol(),
        alpn: sock.alpnProtocol ?? false,
        peerSubject: String(peer?.subject?.CN ?? ''),
      };
      sock.once('data', () => done(ok));
      setTimeout(() => done(ok), 300).unref();
    });
    sock.once('timeout', () => done({ ok: false, code: 'ETIMEDOUT', message: tlsHint('ETIMEDOUT') }));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'TLS_ERROR';
      done({ ok: false, code, message: `${tlsHint(code)} (${code}: ${err.message})` });
    });
    sock.once('close', () =>
      done({ ok: false, code: 'ECONNRESET', message: `${tlsHint('ECONNRESET')} (connection closed)` }),
    );
  });
}
