/**
 * `provision check`: everything the agent needs to connect, checked one line at a time, each OK or what to
 * do. The last check is a real TLS handshake (mutual, with the configured CA pinned) with the endpoint.
 */
import { stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { AMAZON_ROOT_CA_1_SHA256 } from './amazon-root-ca.js';
import { readProvisioned } from './config-file.js';
import { isProvisionError } from './errors.js';
import { lookupUser, readIfExists } from './fs-util.js';
import { keyPublicSha256, parseCert, readDeviceKey, x509, type CertInfo } from './keys.js';
import { SERVICE_USER } from './layout.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  readonly status: CheckStatus;
  readonly what: string;
  /** The finding, and for warn/fail what to do about it. */
  readonly detail?: string;
}

export interface CheckOptions {
  configPath: string;
  timeoutMs?: number;
  /** The service user expected to own the key (default "meterlink"); passwd file for tests. */
  serviceUser?: string;
  passwdFile?: string;
  now?: () => Date;
}

const DAY = 86_400_000;
/** The agent reports certificates expiring within this many days; so do we. */
export const EXPIRY_WARN_DAYS = 30;

export async function runChecks(opts: CheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (status: CheckStatus, what: string, detail?: string) =>
    results.push(detail === undefined ? { status, what } : { status, what, detail });
  const now = opts.now?.() ?? new Date();

  let cfg: Awaited<ReturnType<typeof readProvisioned>>;
  try {
    cfg = await readProvisioned(opts.configPath);
  } catch (err) {
    add('fail', `config ${opts.configPath}`, (err as Error).message);
    return results;
  }
  const cloud = cfg?.cloud ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const thing = str(cfg?.thing);
  const endpoint = str(cloud.endpoint);
  const keyPath = str(cloud.key);
  const certPath = str(cloud.cert);
  const caPath = str(cloud.ca);
  const port = typeof cloud.port === 'number' ? cloud.port : 8883;
  const missing = [
    ...(thing ? [] : ['thing']),
    ...(['endpoint', 'key', 'cert', 'ca'] as const).filter((k) => !str(cloud[k])).map((k) => `cloud.${k}`),
  ];
  if (cfg === undefined || !thing || !endpoint || !keyPath || !certPath || !caPath) {
    add(
      'fail',
      `config ${opts.configPath}`,
      cfg === undefined
        ? 'not found: run "meterlink provision register" or "meterlink provision fleet" to write it'
        : `missing ${missing.join(', ')}: run "meterlink provision register" or "meterlink provision fleet"`,
    );
    return results;
  }
  add('ok', `config ${opts.configPath}`, `thing ${thing}, endpoint ${endpoint}:${port}`);

  // Key: present, private, EC P-256, owned by the service user.
  let keyPem: string | undefined;
  try {
    keyPem = await readDeviceKey(keyPath);
    const st = await stat(keyPath);
    const user = opts.serviceUser ?? SERVICE_USER;
    const owner = await lookupUser(user, opts.passwdFile);
    if (owner && st.uid !== owner.uid)
      add('warn', `key ${keyPath}`, `owned by uid ${st.uid}, not ${user}: run "chown ${user}: ${keyPath}"`);
    else add('ok', `key ${keyPath}`, `EC P-256, mode ${(st.mode & 0o777).toString(8)}`);
  } catch (err) {
    add('fail', `key ${keyPath}`, isProvisionError(err) ? err.message : (err as Error).message);
  }

  // Certificate: present, for this key, for this thing, in date.
  let cert: CertInfo | undefined;
  const certPem = await readIfExists(certPath);
  if (certPem === undefined)
    add(
      'fail',
      `certificate ${certPath}`,
      'not found: run "meterlink provision register" or "provision fleet"',
    );
  else {
    try {
      cert = parseCert(certPem);
      add('ok', `certificate ${certPath}`, `id ${cert.fingerprint}, issued by ${cert.cert.issuer}`);
    } catch (err) {
      add(
        'fail',
        `certificate ${certPath}`,
        `not a PEM certificate (${(err as Error).message}): register again`,
      );
    }
  }
  if (cert && keyPem) {
    if (cert.publicKeySha256 === keyPublicSha256(keyPem)) add('ok', 'key matches certificate');
    else
      add(
        'fail',
        'key matches certificate',
        `${certPath} was not issued for ${keyPath}: run "meterlink provision register" again for this key, ` +
          'or restore the key that belongs to the certificate',
      );
  }
  if (cert) {
    if (cert.cn === thing) add('ok', `certificate CN = thing (${thing})`);
    else
      add(
        'fail',
        'certificate CN = thing',
        `CN is ${cert.cn ?? '(none)'} but the config says thing ${thing}: fix "thing" in the config or ` +
          'provision a certificate for this thing',
      );
    const days = Math.floor((cert.notAfter.getTime() - now.getTime()) / DAY);
    if (cert.notBefore.getTime() > now.getTime())
      add(
        'fail',
        'certificate validity',
        `not valid before ${cert.notBefore.toISOString()}: is the clock right (timedatectl)?`,
      );
    else if (days < 0)
      add(
        'fail',
        'certificate validity',
        `expired on ${cert.notAfter.toISOString()}: run "meterlink provision rotate"`,
      );
    else if (days < EXPIRY_WARN_DAYS)
      add(
        'warn',
        'certificate validity',
        `expires in ${days} days (${cert.notAfter.toISOString()}): run "meterlink provision rotate" soon`,
      );
    else add('ok', 'certificate validity', `${days} days to expiry (${cert.notAfter.toISOString()})`);
  }

  // CA: a CA certificate, in date (it must verify the endpoint: the handshake below proves that).
  const caPem = await readIfExists(caPath);
  let caOk = false;
  if (caPem === undefined)
    add('fail', `CA ${caPath}`, 'not found: run "meterlink provision register" to write it');
  else {
    try {
      const ca = new x509.X509Certificate(caPem);
      const bc = ca.getExtension(x509.BasicConstraintsExtension);
      const isAmazon = parseCert(caPem).fingerprint === AMAZON_ROOT_CA_1_SHA256;
      if (bc && !bc.ca)
        add('fail', `CA ${caPath}`, `${ca.subject} is not a CA certificate: put the endpoint's root CA here`);
      else if (ca.notAfter.getTime() < now.getTime())
        add('fail', `CA ${caPath}`, `${ca.subject} expired on ${ca.notAfter.toISOString()}`);
      else {
        caOk = true;
        add(
          'ok',
          `CA ${caPath}`,
          `${isAmazon ? 'Amazon Root CA 1' : ca.subject}, valid until ${ca.notAfter.toISOString().slice(0, 10)}`,
        );
      }
    } catch (err) {
      add('fail', `CA ${caPath}`, `not a PEM certificate (${(err as Error).message})`);
    }
  }

  if (keyPem && certPem && caPem && caOk && !results.some((r) => r.status === 'fail')) {
    const r = await tlsHandshake({
      host: endpoint,
      port,
      ca: caPem,
      cert: certPem,
      key: keyPem,
      timeoutMs: opts.timeoutMs ?? 10_000,
    });
    add(r.ok ? 'ok' : 'fail', `TLS handshake with ${endpoint}:${port}`, r.detail);
  } else add('fail', `TLS handshake with ${endpoint}:${port}`, 'skipped: fix the lines above first');
  return results;
}

export interface HandshakeOptions {
  host: string;
  port: number;
  ca: string;
  cert: string;
  key: string;
  timeoutMs: number;
}

/** A mutual-TLS 1.2 handshake, with ALPN x-amzn-mqtt-ca on 443 as IoT Core requires there. */
export function tlsHandshake(o: HandshakeOptions): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    let sock: ReturnType<typeof connect>;
    try {
      sock = connect({
        host: o.host,
        port: o.port,
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        // TLS 1.2 exactly: there the server's verdict on our certificate is part of the handshake. In TLS 1.3
        // it comes after the client's Finished, so a "successful" handshake would not prove the box is accepted.
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.2',
        ...(isIP(o.host) ? {} : { servername: o.host }),
        ...(o.port === 443 ? { ALPNProtocols: ['x-amzn-mqtt-ca'] } : {}),
      });
    } catch (err) {
      // node:tls refuses a key that does not belong to the certificate before any network traffic.
      resolve({ ok: false, detail: `cannot start TLS: ${(err as Error).message}` });
      return;
    }
    const done = (ok: boolean, detail: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok, detail });
    };
    const timer = setTimeout(
      () =>
        done(
          false,
          `no answer within ${o.timeoutMs} ms: check cloud.endpoint, cloud.port and the network/firewall`,
        ),
      o.timeoutMs,
    );
    sock.once('secureConnect', () =>
      done(true, `${sock.getProtocol() ?? 'TLS'}, server certificate verified against the CA`),
    );
    sock.once('error', (err: NodeJS.ErrnoException) => done(false, explainTlsError(err)));
  });
}

function explainTlsError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT/.test(code))
    return `cannot reach the endpoint (${code}): check cloud.endpoint, cloud.port and the network/firewall`;
  if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS_CERT_ALTNAME/.test(code) && !/ALERT/.test(code))
    return `the endpoint's certificate is not trusted by cloud.ca (${code}): cloud.ca must be the endpoint's root CA (Amazon Root CA 1 for an -ats endpoint)`;
  if (/ALERT|ECONNRESET|EPIPE/.test(code) || /alert/i.test(err.message))
    return `the endpoint rejected this box's certificate (${code || err.message}): is it active and registered there (meterlink provision register)?`;
  return `${code ? `${code}: ` : ''}${err.message}`;
}
