/**
 * Where the dashboard listens, and the rule that goes with it: loopback needs no token (only someone on the
 * box, or with an SSH tunnel to it, can connect); any other address is reachable from the network, so it
 * needs `dashboard.token` and the agent warns when it starts.
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
  loopback: boolean;
}

/** `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`, `0.0.0.0:8080` → host, port, loopback. */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
  if (!m) throw new Error(`${JSON.stringify(text)} is not host:port (e.g. 127.0.0.1:8080)`);
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is above 65535`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new Error(`[${host}] is not an IPv6 address`);
  return { host, port, loopback: isLoopback(host) };
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** The URL a browser on the box opens (0.0.0.0 / :: are shown as the loopback address they also serve). */
export function dashboardUrl(addr: { host: string; port: number }, token?: string): string {
  const host =
    addr.host === '0.0.0.0'
      ? '127.0.0.1'
      : addr.host === '::'
        ? '[::1]'
        : isIP(addr.host) === 6
          ? `[${addr.host}]`
          : addr.host;
  return `http://${host}:${addr.port}/${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

/**
 * What a dashboard token must look like: long enough that guessing it over the network is hopeless, and only
 * characters that survive a URL query (`?token=`) unescaped. The config schema uses the same pattern.
 */
export const TOKEN_PATTERN = '^[A-Za-z0-9._~-]{16,256}$';
const tokenRe = new RegExp(TOKEN_PATTERN);

export interface AccessProblem {
  message: string;
  fix: string;
}

/**
 * The one token rule, for every place a token can be given (`dashboard.token`, `meterlink dashboard --token`,
 * the server itself): undefined when `token` is acceptable, else what is wrong and the fix.
 */
export function tokenProblem(token: string): AccessProblem | undefined {
  if (tokenRe.test(token)) return undefined;
  const why =
    token.length === 0
      ? 'the token is empty'
      : token.length < 16
        ? `the token has ${token.length} characters, fewer than 16`
        : token.length > 256
          ? `the token has ${token.length} characters, more than 256`
          : 'the token has characters other than letters, digits and . _ ~ -';
  return {
    message: why,
    fix: 'use at least 16 letters, digits or . _ ~ - (e.g. the output of `openssl rand -hex 16`)',
  };
}

/**
 * The access rule: a problem text and fix when the token is malformed, or when a non-loopback address has no
 * token; else undefined.
 */
export function listenProblem(listen: string, token: string | undefined): AccessProblem | undefined {
  if (token !== undefined) {
    const bad = tokenProblem(token);
    if (bad) return bad;
  }
  let addr: ListenAddress;
  try {
    addr = parseListen(listen);
  } catch (err) {
    return { message: (err as Error).message, fix: 'write host:port, e.g. 127.0.0.1:8080' };
  }
  if (addr.loopback || token !== undefined) return undefined;
  return {
    message: `${listen} is reachable from the network, so the dashboard needs a token`,
    fix: 'add dashboard.token (e.g. the output of `openssl rand -hex 16`), or listen on 127.0.0.1:8080 and use an SSH tunnel',
  };
}
