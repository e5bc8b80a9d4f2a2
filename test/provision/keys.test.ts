import t from 'tap';
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AMAZON_ROOT_CA_1_PEM, AMAZON_ROOT_CA_1_SHA256 } from '../../agent/provision/amazon-root-ca.js';
import { updateConfigFile } from '../../agent/provision/config-file.js';
import { ensureDeviceKey } from '../../agent/provision/device-key.js';
import { isProvisionError } from '../../agent/provision/errors.js';
import { lookupUser, serviceOwner } from '../../agent/provision/fs-util.js';
import { keyPublicSha256, parseCsr, readDeviceKey, x509 } from '../../agent/provision/keys.js';
import { layout } from '../../agent/provision/layout.js';
import { silentReporter } from '../../agent/provision/report.js';
import { runCliCaptured } from '../harness/cli.js';
import { tempDir } from '../harness/tmp.js';

// Published SHA-256 fingerprint of Amazon Root CA 1 (https://www.amazontrust.com/repository/).
const PUBLISHED =
  '8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E';

t.test('the bundled Amazon Root CA 1 is the published one', async (t) => {
  const file = await readFile(
    fileURLToPath(new URL('../../agent/provision/AmazonRootCA1.pem', import.meta.url)),
    'utf8',
  );
  t.equal(file, AMAZON_ROOT_CA_1_PEM, 'the .pem file and the embedded copy agree');
  const der = new Uint8Array(new x509.X509Certificate(file).rawData);
  const fp = createHash('sha256').update(der).digest('hex');
  t.equal(fp, PUBLISHED.replace(/:/g, '').toLowerCase());
  t.equal(AMAZON_ROOT_CA_1_SHA256, fp);
});

t.test(
  'provision key: EC P-256, 0600, CSR with CN = thing; kept on a second run; --force replaces',
  async (t) => {
    const dir = await tempDir(t);
    const res = await runCliCaptured(['provision', 'key', '--thing', 'box-1', '--dir', dir]);
    t.equal(res.code, 0, res.stderr);
    t.notMatch(res.stdout, /BEGIN/, 'nothing secret printed');
    const keyPem = await readFile(join(dir, 'device.key'), 'utf8');
    t.match(keyPem, /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8');
    t.equal((await stat(join(dir, 'device.key'))).mode & 0o777, 0o600);
    const csr = parseCsr(await readFile(join(dir, 'device.csr'), 'utf8'));
    t.equal(csr.cn, 'box-1');
    t.equal(csr.publicKeySha256, keyPublicSha256(keyPem));

    const again = await runCliCaptured(['provision', 'key', '--thing', 'box-1', '--dir', dir]);
    t.match(again.stdout, /UNCHANGED\s+device key .*\nUNCHANGED\s+CSR/);
    t.equal(await readFile(join(dir, 'device.key'), 'utf8'), keyPem);
    const renamed = await runCliCaptured(['provision', 'key', '--thing', 'box-2', '--dir', dir]);
    t.match(renamed.stdout, /UPDATED\s+CSR .*\(CN=box-2\)/);
    const forced = await runCliCaptured(['provision', 'key', '--thing', 'box-2', '--dir', dir, '--force']);
    t.match(forced.stdout, /CREATED\s+device key/);
    t.not(await readFile(join(dir, 'device.key'), 'utf8'), keyPem);

    const bad = await runCliCaptured(['provision', 'key', '--thing', 'no spaces', '--dir', dir]);
    t.equal(bad.code, 1);
    t.match(bad.stderr, /invalid thing name "no spaces"/);
    const help = await runCliCaptured(['provision', 'register', '--help']);
    t.match(help.stdout, /Example:\n\s+sudo -E meterlink provision register/);
  },
);

t.test('the key goes to the service user when run as root', async (t) => {
  const dir = await tempDir(t);
  const passwd = join(dir, 'passwd');
  await writeFile(
    passwd,
    'root:x:0:0:root:/root:/bin/sh\nmeterlink:x:65534:65533::/nonexistent:/usr/sbin/nologin\n',
  );
  t.same(await lookupUser('meterlink', passwd), { uid: 65534, gid: 65533 });
  t.equal(await lookupUser('nobody-here', passwd), undefined);
  t.equal(await lookupUser('meterlink', join(dir, 'missing')), undefined);
  t.equal(await serviceOwner('meterlink', { passwdFile: passwd, isRoot: false }), undefined);
  const owner = await serviceOwner('meterlink', { passwdFile: passwd, isRoot: true });
  if (process.getuid?.() !== 0) return; // chown needs root; CI runs as root
  await ensureDeviceKey({ thing: 'box-1', files: layout(dir), owner, report: silentReporter });
  const st = await stat(join(dir, 'device.key'));
  t.equal(st.uid, 65534);
  t.equal(st.gid, 65533);
});

t.test('readDeviceKey refuses unsafe or unusable keys', async (t) => {
  const dir = await tempDir(t);
  const rsa = join(dir, 'rsa.key');
  const { generateKeyPairSync } = await import('node:crypto');
  await writeFile(
    rsa,
    generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    { mode: 0o600 },
  );
  await t.rejects(readDeviceKey(rsa), { code: 'KEY_INVALID', message: /not a usable EC P-256 private key/ });
  await t.rejects(readDeviceKey(join(dir, 'none.key')), { code: 'KEY_MISSING' });
  try {
    await readDeviceKey(join(dir, 'none.key'));
  } catch (err) {
    t.ok(isProvisionError(err, 'KEY_MISSING'), 'type guard');
  }
});

t.test(
  'config: only thing and cloud change, comments stay; bad YAML is reported with its line',
  async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'config.yaml');
    const cloud = {
      endpoint: 'e-ats.iot.eu-west-1.amazonaws.com',
      port: 8883,
      ca: '/a',
      cert: '/b',
      key: '/c',
    };
    t.equal(await updateConfigFile(file, { thing: 'box-1', cloud }), true, 'new file');
    const fresh = await readFile(file, 'utf8');
    t.match(fresh, /^# meterlink configuration/);
    t.equal(await updateConfigFile(file, { thing: 'box-1', cloud }), false, 'no change');
    await writeFile(file, 'thing: old # mine\ncloud: none # was a string\nbuffer:\n  path: /x # keep\n');
    t.equal(await updateConfigFile(file, { thing: 'box-1', cloud }, { dryRun: true }), true);
    t.match(await readFile(file, 'utf8'), /thing: old/, 'dry run wrote nothing');
    await updateConfigFile(file, { thing: 'box-1', cloud });
    const text = await readFile(file, 'utf8');
    t.match(text, /thing: box-1 # mine/);
    t.match(text, /path: \/x # keep/);
    t.match(text, /endpoint: e-ats\.iot\.eu-west-1\.amazonaws\.com/);
    await writeFile(file, 'thing: [unclosed\n');
    await t.rejects(updateConfigFile(file, { thing: 'box-1', cloud }), {
      code: 'CONFIG_INVALID',
      message: /config\.yaml:\d+ is not valid YAML/,
    });
    await writeFile(file, '- a list\n');
    await t.rejects(updateConfigFile(file, { thing: 'box-1', cloud }), { message: /must be a YAML mapping/ });
  },
);
