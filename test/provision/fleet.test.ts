import t, { type Test } from 'tap';
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { loadConfig } from '../../agent/config/index.js';
import { keyPublicSha256, parseCert } from '../../agent/provision/keys.js';
import { runCliCaptured } from '../harness/cli.js';
import { startMosquitto, type Broker, type DeviceCredentials } from '../harness/mosquitto.js';
import { testClient, type TestClient } from '../harness/mqtt-client.js';
import { startMoto } from '../harness/moto.js';
import { freePort } from '../harness/net.js';
import { tempDir, type Teardown } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';
import { endAfterMqtt } from '../harness/exit.js';
import { startResponder, type Responder } from './fleet-responder.js';

const CONFIG = `# hand-written
thing: placeholder
meters:
  - id: main # hall
    driver: modbus-rtu
    port: /dev/ttyUSB0
    unit: 1
    profile: eastron-sdm630
`;

interface Ctx {
  broker: Broker;
  responder: Responder;
  claim: DeviceCredentials;
  watcher: TestClient;
}

function fleet(ctx: Ctx, dir: string, thing: string, ...more: string[]) {
  return runCliCaptured([
    'provision',
    'fleet',
    '--thing',
    thing,
    '--claim-cert',
    ctx.claim.cert,
    '--claim-key',
    ctx.claim.key,
    '--template',
    'meterlink-fleet',
    '--endpoint',
    ctx.broker.host,
    '--port',
    String(ctx.broker.port),
    '--ca',
    ctx.broker.caFile,
    '--dir',
    dir,
    '--config',
    join(dir, 'config.yaml'),
    ...more,
  ]);
}

const yamlOf = async (file: string) =>
  parseDocument(await readFile(file, 'utf8')).toJS() as { thing: string; cloud: Record<string, unknown> };

/** A box provisioned by fleet provisioning (the happy path, used by several tests). */
async function provisioned(t: Teardown, ctx: Ctx, thing: string) {
  const dir = await tempDir(t, 'meterlink-fleet-');
  const config = join(dir, 'config.yaml');
  await writeFile(config, CONFIG);
  const res = await fleet(ctx, dir, thing);
  if (res.code !== 0) throw new Error(`fleet failed: ${res.stderr}`);
  return { dir, config };
}

await t.test('provisioning against Mosquitto', async (t) => {
  // Everything lives inside this test so its teardown (clients, broker) runs when it ends.
  const broker = await startMosquitto(t);
  const responder = await startResponder(t, broker, { templates: new Set(['meterlink-fleet']) });
  const claim = await broker.deviceCert('claim');
  const watcherCreds = await broker.deviceCert('watcher');
  const watcher = testClient({
    host: broker.host,
    port: broker.port,
    caFile: broker.caFile,
    clientId: 'watcher',
    certFile: watcherCreds.cert,
    keyFile: watcherCreds.key,
  });
  t.teardown(() => watcher.close());
  t.ok((await watcher.connect()).ok, 'watcher connected');
  await watcher.subscribe('meterlink/v1/+/health');
  const ctx: Ctx = { broker, responder, claim, watcher };
  const sub = (name: string, fn: (t: Test) => Promise<void>) =>
    !process.env.ONLY || name.includes(process.env.ONLY) ? t.test(name, fn) : undefined;

  await sub('fleet by claim: certificate for the box key, thing registered, health proves it', async (t) => {
    const dir = await tempDir(t, 'meterlink-fleet-');
    const config = join(dir, 'config.yaml');
    await writeFile(config, CONFIG);
    const res = await fleet(ctx, dir, 'box-fleet-1', '--param', 'SerialNumber=4711');
    t.equal(res.code, 0, res.stderr + res.stdout);
    t.match(res.stdout, /CREATED\s+device key/);
    t.match(res.stdout, /CREATED\s+certificate [0-9a-f]{64} \(CreateCertificateFromCsr\)/);
    t.match(res.stdout, /CREATED\s+thing box-fleet-1 registered by template meterlink-fleet/);
    t.match(res.stdout, /OK\s+connected with the new certificate and published health/);
    t.match(res.stdout, /claim certificate is no longer needed/);

    const provision = responder.requests.find((r) => r.topic.includes('provision'));
    t.match(provision?.body, {
      certificateOwnershipToken: String,
      parameters: { ThingName: 'box-fleet-1', SerialNumber: '4711' },
    });
    const csrReq = responder.requests.find((r) => r.topic === '$aws/certificates/create-from-csr/json');
    t.notMatch(JSON.stringify(csrReq?.body), /PRIVATE KEY/, 'only the CSR went out');

    const cert = parseCert(await readFile(join(dir, 'device.crt'), 'utf8'));
    t.equal(cert.cn, 'box-fleet-1');
    t.equal(
      cert.publicKeySha256,
      keyPublicSha256(await readFile(join(dir, 'device.key'), 'utf8')),
      'the certificate is for our key',
    );
    t.equal((await stat(join(dir, 'device.key'))).mode & 0o777, 0o600);

    const health = await waitFor(
      () => watcher.received.find((m) => m.topic === 'meterlink/v1/box-fleet-1/health'),
      { what: 'health message' },
    );
    t.match(JSON.parse(health.payload.toString()), {
      thing: 'box-fleet-1',
      event: 'provisioned',
      certificateId: cert.fingerprint,
    });

    const text = await readFile(config, 'utf8');
    t.match(text, /^# hand-written/);
    t.match(text, /id: main # hall/);
    const js = await yamlOf(config);
    t.equal(js.thing, 'box-fleet-1');
    t.same(js.cloud, {
      endpoint: '127.0.0.1',
      port: broker.port,
      ca: broker.caFile,
      cert: join(dir, 'device.crt'),
      key: join(dir, 'device.key'),
    });
    // The config loader accepts what we wrote, in the daemon's strict mode (files readable, key 0600). It
    // allows only the ports IoT Core listens on, so the copy it checks names 8883 instead of the test port.
    const checked = join(dir, 'checked.yaml');
    await writeFile(checked, text.replace(`port: ${broker.port}`, 'port: 8883'));
    t.equal((await loadConfig(checked, { requireCloud: true })).thing, 'box-fleet-1');

    const check = await runCliCaptured(['provision', 'check', '--config', config]);
    t.equal(check.code, 0, check.stdout + check.stderr);
    t.notMatch(check.stdout, /^(FAIL|WARN)/m);
    t.match(check.stdout, /OK\s+key matches certificate/);
    t.match(check.stdout, /OK\s+certificate CN = thing \(box-fleet-1\)/);
    t.match(check.stdout, /OK\s+certificate validity: 36\d days to expiry/);
    t.match(check.stdout, /OK\s+TLS handshake with 127\.0\.0\.1:\d+: TLSv1\.2/);
    const json = await runCliCaptured(['provision', 'check', '--config', config, '--json']);
    t.ok(
      (JSON.parse(json.stdout) as { status: string }[]).every((r) => r.status === 'ok'),
      'check --json',
    );
  });

  await sub('fleet: the rejected paths', async (t) => {
    const dir = await tempDir(t, 'meterlink-fleet-');
    const noTemplate = await fleet(ctx, dir, 'box-fleet-2', '--template', 'no-such-template');
    t.equal(noTemplate.code, 1);
    t.match(
      noTemplate.stderr,
      /RegisterThing with template "no-such-template" was rejected .*404 ResourceNotFound The template no-such-template does not exist/,
    );
    await t.rejects(stat(join(dir, 'config.yaml')), 'no config written');
    await t.rejects(stat(join(dir, 'device.crt')), 'no certificate written');

    responder.behaviour.rejectCsr = {
      statusCode: 400,
      errorCode: 'InvalidPayload',
      errorMessage: 'CSR too weak',
    };
    const badCsr = await fleet(ctx, dir, 'box-fleet-2');
    responder.behaviour.rejectCsr = undefined;
    t.equal(badCsr.code, 1);
    t.match(
      badCsr.stderr,
      /CreateCertificateFromCsr was rejected on \$aws\/certificates\/create-from-csr\/json\/rejected: 400 InvalidPayload CSR too weak/,
    );

    responder.behaviour.thingNameOverride = 'someone-else';
    const mismatch = await fleet(ctx, dir, 'box-fleet-2');
    responder.behaviour.thingNameOverride = undefined;
    t.equal(mismatch.code, 1);
    t.match(
      mismatch.stderr,
      /registered the certificate to thing "someone-else", but this box's CSR and client id are for "box-fleet-2"/,
    );

    const badClaim = await fleet(ctx, dir, 'box-fleet-2', '--claim-cert', join(dir, 'nope.crt'));
    t.equal(badClaim.code, 1);
    t.match(badClaim.stderr, /cannot read the claim certificate .*nope\.crt/);

    const deadPort = await fleet(ctx, dir, 'box-fleet-2', '--port', String(await freePort()));
    t.equal(deadPort.code, 1);
    t.match(deadPort.stderr, /cannot reach 127\.0\.0\.1:\d+ .*check the endpoint, the port and the network/);
  });

  await sub('check: each problem on its own line with what to do', async (t) => {
    const { dir, config } = await provisioned(t, ctx, 'box-check');
    const check = () => runCliCaptured(['provision', 'check', '--config', config, '--timeout', '5000']);

    const js = await yamlOf(config);
    await writeFile(
      config,
      (await readFile(config, 'utf8')).replace(`port: ${broker.port}`, `port: ${await freePort()}`),
    );
    const down = await check();
    t.equal(down.code, 1);
    t.match(
      down.stdout,
      /FAIL\s+TLS handshake with 127\.0\.0\.1:\d+: cannot reach the endpoint \(ECONNREFUSED\)/,
    );
    t.match(down.stderr, /1 check\(s\) failed/);

    const otherCa = await startMosquitto(t);
    await writeFile(
      config,
      (await readFile(config, 'utf8'))
        .replace(/port: \d+/, `port: ${broker.port}`)
        .replace(broker.caFile, otherCa.caFile),
    );
    const wrongCa = await check();
    t.match(wrongCa.stdout, /FAIL\s+TLS handshake .*not trusted by cloud\.ca/);

    // A certificate the broker's CA did not sign: the broker rejects this box.
    const stranger = await otherCa.deviceCert('box-check');
    await writeFile(
      config,
      (await readFile(config, 'utf8'))
        .replace(otherCa.caFile, broker.caFile)
        .replace(String(js.cloud.cert), stranger.cert)
        .replace(String(js.cloud.key), stranger.key),
    );
    const rejected = await check();
    t.match(rejected.stdout, /OK\s+key matches certificate/);
    t.match(rejected.stdout, /FAIL\s+TLS handshake .*rejected this box's certificate/);

    // Back to our files, then break them one by one.
    await writeFile(
      config,
      (await readFile(config, 'utf8'))
        .replace(stranger.cert, String(js.cloud.cert))
        .replace(stranger.key, String(js.cloud.key)),
    );
    t.equal((await check()).code, 0, 'restored');

    await writeFile(config, (await readFile(config, 'utf8')).replace('thing: box-check', 'thing: box-other'));
    const cn = await check();
    t.match(cn.stdout, /FAIL\s+certificate CN = thing: CN is box-check but the config says thing box-other/);
    await writeFile(config, (await readFile(config, 'utf8')).replace('thing: box-other', 'thing: box-check'));

    await writeFile(config, (await readFile(config, 'utf8')).replace(String(js.cloud.key), stranger.key));
    const foreign = await check();
    t.match(
      foreign.stdout + foreign.stderr,
      /FAIL\s+key matches certificate: .*device\.crt was not issued for/,
    );
    await writeFile(config, (await readFile(config, 'utf8')).replace(stranger.key, String(js.cloud.key)));

    await chmod(join(dir, 'device.key'), 0o640);
    const unsafe = await check();
    t.match(unsafe.stdout, /FAIL\s+key .*can be read by others \(mode 640\): run "chmod 600/);
    t.match(unsafe.stdout, /FAIL\s+TLS handshake .*skipped: fix the lines above first/);
    await chmod(join(dir, 'device.key'), 0o600);

    const expiring = await otherCa.deviceCert('box-check', {
      notAfter: new Date(Date.now() + 10 * 86_400_000),
    });
    const expired = await otherCa.deviceCert('box-check', {
      notBefore: new Date(Date.now() - 20 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const point = async (c: DeviceCredentials) =>
      writeFile(
        config,
        (await readFile(config, 'utf8'))
          .replace(/cert: .*/, `cert: ${c.cert}`)
          .replace(/key: .*/, `key: ${c.key}`),
      );
    await point(expiring);
    t.match((await check()).stdout, /WARN\s+certificate validity: expires in 9 days .*provision rotate/);
    await point(expired);
    t.match((await check()).stdout, /FAIL\s+certificate validity: expired on .*provision rotate/);

    const missing = await runCliCaptured(['provision', 'check', '--config', join(dir, 'nothing.yaml')]);
    t.match(missing.stdout, /FAIL\s+config .*nothing\.yaml: not found: run "meterlink provision register"/);
    await writeFile(join(dir, 'half.yaml'), 'thing: x\n');
    const half = await runCliCaptured(['provision', 'check', '--config', join(dir, 'half.yaml')]);
    t.match(half.stdout, /missing cloud\.endpoint, cloud\.key, cloud\.cert, cloud\.ca/);
  });

  await sub(
    'rotate by fleet provisioning: new pair proven, then one atomic switch; old pair kept',
    async (t) => {
      const { dir, config } = await provisioned(t, ctx, 'box-rotate');
      const oldCert = await readFile(join(dir, 'device.crt'), 'utf8');
      const res = await runCliCaptured([
        'provision',
        'rotate',
        '--config',
        config,
        '--template',
        'meterlink-fleet',
      ]);
      t.equal(res.code, 0, res.stderr + res.stdout);
      t.match(res.stdout, /OK\s+new certificate connected .* and published health/);
      t.match(res.stdout, /UPDATED\s+config .* now names .*device-\d{8}-\d{6}\.crt \(switched atomically\)/);
      const js = await yamlOf(config);
      t.match(js.cloud.cert, /device-\d{8}-\d{6}\.crt$/);
      t.match(js.cloud.key, /device-\d{8}-\d{6}\.key$/);
      t.equal(await readFile(join(dir, 'device.crt'), 'utf8'), oldCert, 'old certificate kept');
      const newCert = parseCert(await readFile(String(js.cloud.cert), 'utf8'));
      t.equal(newCert.publicKeySha256, keyPublicSha256(await readFile(String(js.cloud.key), 'utf8')));
      t.not(newCert.fingerprint, parseCert(oldCert).fingerprint);
      await waitFor(
        () =>
          watcher.received.find(
            (m) =>
              m.topic === 'meterlink/v1/box-rotate/health' &&
              m.payload.toString().includes('certificate-rotated'),
          ),
        { what: 'health from the rotated certificate' },
      );
      t.equal(
        (await runCliCaptured(['provision', 'check', '--config', config])).code,
        0,
        'check passes after',
      );
    },
  );

  await sub(
    'rotate with a certificate that cannot connect: nothing switched, staged files removed',
    async (t) => {
      const { dir, config } = await provisioned(t, ctx, 'box-rotate-2');
      const before = await readFile(config, 'utf8');
      const moto = await startMoto(t);
      const env = { ...process.env };
      t.teardown(() => void Object.assign(process.env, env));
      Object.assign(process.env, {
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AWS_REGION: moto.region,
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      const { IoTClient, CreatePolicyCommand } = await import('@aws-sdk/client-iot');
      const iot = new IoTClient({
        endpoint: moto.endpoint,
        region: moto.region,
        credentials: moto.credentials,
      });
      t.teardown(() => iot.destroy());
      await iot.send(
        new CreatePolicyCommand({
          policyName: 'p',
          policyDocument: '{"Version":"2012-10-17","Statement":[]}',
        }),
      );
      // moto's certificate is signed by moto's own CA for a key of its own: Mosquitto cannot accept it.
      const res = await runCliCaptured([
        'provision',
        'rotate',
        '--config',
        config,
        '--policy',
        'p',
        '--endpoint-url',
        moto.endpoint,
        '--timeout',
        '8000',
      ]);
      t.equal(res.code, 1, res.stdout);
      t.match(res.stdout, /CREATED\s+certificate [0-9a-f]+ \(active\)/);
      t.match(
        res.stderr,
        /the new certificate could not connect .*nothing was switched, the agent keeps using .*device\.crt/,
      );
      t.equal(await readFile(config, 'utf8'), before, 'config untouched');
      t.same(
        (await readdir(dir)).filter((f) => f.startsWith('device-')),
        [],
        'staged files removed',
      );
      const usage = await runCliCaptured(['provision', 'rotate', '--config', config]);
      t.equal(usage.code, 2);
      t.match(usage.stderr, /exactly one of --policy .* or --template/);
      const none = await runCliCaptured([
        'provision',
        'rotate',
        '--config',
        join(dir, 'none.yaml'),
        '--template',
        'x',
      ]);
      t.match(none.stderr, /has no thing\/cloud\.endpoint\/cloud\.key\/cloud\.cert to rotate from/);
    },
  );
});

// aws-crt frees a closed native MQTT client, and lets the process exit, only once the client object is
// garbage collected, which an idle process may put off indefinitely. Every client here is closed by now.
await endAfterMqtt(t);
