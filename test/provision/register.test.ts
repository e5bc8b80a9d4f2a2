import t from 'tap';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreatePolicyCommand,
  DescribeCertificateCommand,
  IoTClient,
  ListAttachedPoliciesCommand,
  ListThingPrincipalsCommand,
  ListThingsCommand,
} from '@aws-sdk/client-iot';
import { parseDocument } from 'yaml';
import { runCliCaptured } from '../harness/cli.js';
import { startMoto } from '../harness/moto.js';
import { freePort } from '../harness/net.js';
import { tempDir, type Teardown } from '../harness/tmp.js';
import { AMAZON_ROOT_CA_1_PEM } from '../../agent/provision/amazon-root-ca.js';

const POLICY = 'meterlink-device';
const THING = 'apt-12-meterbox';

const moto = await startMoto(t);
process.env.AWS_ACCESS_KEY_ID = moto.credentials.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = moto.credentials.secretAccessKey;
process.env.AWS_REGION = moto.region;
process.env.AWS_EC2_METADATA_DISABLED = 'true';
const iot = new IoTClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
t.teardown(() => iot.destroy());

const CONFIG_WITH_COMMENTS = `# my box
thing: old-name # set by hand
meters:
  - id: main # the meter in the hall
    driver: modbus-rtu
    port: /dev/ttyUSB0
    unit: 1
    profile: eastron-sdm630
buffer:
  path: /var/lib/meterlink/buffer # on the SD card
`;

async function box(t: Teardown) {
  const dir = await tempDir(t, 'meterlink-prov-');
  const config = join(dir, 'config.yaml');
  return { dir, config };
}

async function createPolicy() {
  await iot.send(
    new CreatePolicyCommand({
      policyName: POLICY,
      policyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
      }),
    }),
  );
}

const reg = (dir: string, config: string, ...more: string[]) =>
  runCliCaptured([
    'provision',
    'register',
    '--thing',
    THING,
    '--policy',
    POLICY,
    '--endpoint-url',
    moto.endpoint,
    '--dir',
    dir,
    '--config',
    config,
    ...more,
  ]);

t.test(
  'register creates thing, active certificate and both attachments; a second run changes nothing',
  async (t) => {
    await moto.reset();
    await createPolicy();
    const { dir, config } = await box(t);
    await writeFile(config, CONFIG_WITH_COMMENTS);
    const key = await runCliCaptured(['provision', 'key', '--thing', THING, '--dir', dir]);
    t.equal(key.code, 0, key.stderr);
    t.notMatch(key.stdout, /PRIVATE KEY/, 'the key is never printed');

    const dry = await reg(dir, config, '--dry-run');
    t.equal(dry.code, 0, dry.stderr);
    t.match(dry.stdout, /WOULD\s+create thing apt-12-meterbox/);
    t.match(dry.stdout, /Dry run: nothing was changed/);
    t.same((await iot.send(new ListThingsCommand({}))).things, [], 'dry run created nothing');

    const first = await reg(dir, config);
    t.equal(first.code, 0, first.stderr + first.stdout);
    t.match(first.stdout, /CREATED\s+thing apt-12-meterbox/);
    t.match(first.stdout, /CREATED\s+certificate [0-9a-f]+ \(active\)/);
    t.match(first.stdout, /CREATED\s+attachment certificate → thing/);
    t.match(first.stdout, /CREATED\s+attachment policy meterlink-device → certificate/);
    t.match(first.stdout, /OK\s+endpoint .*-ats\.iot\.eu-west-1\.amazonaws\.com/);
    // moto signs with a key of its own, not the CSR's: we say so (real AWS IoT signs the CSR's key).
    t.match(first.stdout, /WARN\s+the returned certificate does not carry this box's public key/);

    const record = JSON.parse(await readFile(join(dir, 'device.crt.json'), 'utf8')) as {
      certificateId: string;
      certificateArn: string;
    };
    const desc = await iot.send(new DescribeCertificateCommand({ certificateId: record.certificateId }));
    t.equal(desc.certificateDescription?.status, 'ACTIVE', 'certificate is active');
    const principals = await iot.send(new ListThingPrincipalsCommand({ thingName: THING }));
    t.same(principals.principals, [record.certificateArn], 'certificate attached to the thing');
    const policies = await iot.send(new ListAttachedPoliciesCommand({ target: record.certificateArn }));
    t.same(
      policies.policies?.map((p) => p.policyName),
      [POLICY],
      'policy attached to the certificate',
    );

    t.equal((await stat(join(dir, 'device.key'))).mode & 0o777, 0o600, 'key is 0600');
    t.equal((await stat(join(dir, 'device.crt'))).mode & 0o777, 0o644, 'certificate is 0644');
    t.equal(await readFile(join(dir, 'AmazonRootCA1.pem'), 'utf8'), AMAZON_ROOT_CA_1_PEM, 'CA written');

    const text = await readFile(config, 'utf8');
    t.match(text, /^# my box/, 'leading comment kept');
    t.match(text, /id: main # the meter in the hall/, 'comments elsewhere kept');
    t.match(text, /path: \/var\/lib\/meterlink\/buffer # on the SD card/);
    const js = parseDocument(text).toJS() as Record<string, Record<string, unknown>>;
    t.equal(js.thing, THING as never);
    t.match(js.cloud, {
      endpoint: /-ats\.iot\.eu-west-1\.amazonaws\.com$/,
      port: 8883,
      ca: join(dir, 'AmazonRootCA1.pem'),
      cert: join(dir, 'device.crt'),
      key: join(dir, 'device.key'),
    });
    t.equal((js.meters as unknown as unknown[]).length, 1, 'meters untouched');

    // moto invents a new endpoint name on every DescribeEndpoint call (AWS's is fixed per account and region),
    // so a plain second run updates cloud.endpoint and nothing else.
    const second = await reg(dir, config);
    t.equal(second.code, 0, second.stderr);
    t.notMatch(second.stdout, /CREATED|WRITTEN/, 'second run creates nothing');
    t.match(second.stdout, /UNCHANGED\s+thing apt-12-meterbox exists/);
    t.match(second.stdout, /UNCHANGED\s+certificate [0-9a-f]+ for this key is active/);
    t.match(second.stdout, /UNCHANGED\s+certificate attached to thing/);
    t.match(second.stdout, /UNCHANGED\s+policy meterlink-device attached/);
    t.match(second.stdout, /UNCHANGED\s+Amazon Root CA 1/);

    // With the endpoint held fixed, as AWS holds it, a further run is a complete no-op.
    const endpoint = String(
      (parseDocument(await readFile(config, 'utf8')).toJS() as { cloud: { endpoint: string } }).cloud
        .endpoint,
    );
    const before = await readFile(config, 'utf8');
    const third = await reg(dir, config, '--endpoint', endpoint);
    t.equal(third.code, 0, third.stderr);
    t.notMatch(third.stdout, /CREATED|WRITTEN|UPDATED|WOULD/, 'third run changes nothing');
    t.match(third.stdout, /UNCHANGED\s+config/);
    t.match(third.stdout, /Nothing to do/);
    t.equal(await readFile(config, 'utf8'), before, 'config byte-identical');
    const dry2 = await reg(dir, config, '--endpoint', endpoint, '--dry-run');
    t.match(dry2.stdout, /Dry run: everything is already in place/);
    const again = await iot.send(new ListThingPrincipalsCommand({ thingName: THING }));
    t.equal(again.principals?.length, 1, 'no second certificate');
  },
);

t.test('failure modes say what is wrong and what to do', async (t) => {
  await moto.reset();
  const { dir, config } = await box(t);
  t.equal((await runCliCaptured(['provision', 'key', '--thing', THING, '--dir', dir])).code, 0);

  const noPolicy = await reg(dir, config);
  t.equal(noPolicy.code, 1);
  t.match(noPolicy.stderr, /the IoT policy "meterlink-device" does not exist .*deploy the meterlink stack/);

  await createPolicy();
  const saved = { ...process.env };
  t.teardown(() => {
    Object.assign(process.env, saved);
  });
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  delete process.env.AWS_PROFILE;
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'no-credentials');
  process.env.AWS_CONFIG_FILE = join(dir, 'no-config');
  const noCreds = await reg(dir, config);
  t.equal(noCreds.code, 1);
  t.match(noCreds.stderr, /no AWS credentials found .*AWS_PROFILE/);
  Object.assign(process.env, saved);

  const closed = `http://127.0.0.1:${await freePort()}`;
  const unreachable = await runCliCaptured([
    'provision',
    'register',
    '--thing',
    THING,
    '--policy',
    POLICY,
    '--endpoint-url',
    closed,
    '--dir',
    dir,
    '--config',
    config,
  ]);
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /cannot reach the AWS IoT API at http:\/\/127\.0\.0\.1:\d+ .*ECONNREFUSED/);

  const otherThing = await runCliCaptured([
    'provision',
    'register',
    '--thing',
    'another-box',
    '--policy',
    POLICY,
    '--endpoint-url',
    moto.endpoint,
    '--dir',
    dir,
    '--config',
    config,
  ]);
  t.equal(otherThing.code, 1);
  t.match(otherThing.stderr, /the CSR .* is for CN=apt-12-meterbox, not for thing "another-box"/);

  await chmod(join(dir, 'device.key'), 0o644);
  const unsafe = await reg(dir, config);
  t.equal(unsafe.code, 1);
  t.match(unsafe.stderr, /can be read by others \(mode 644\): run "chmod 600 /);

  const empty = await tempDir(t);
  const noKey = await reg(empty, join(empty, 'config.yaml'));
  t.equal(noKey.code, 1);
  t.match(noKey.stderr, /no device key at .*meterlink provision key --thing NAME/);
  t.same((await iot.send(new ListThingsCommand({}))).things, [], 'no failure created anything');
});
