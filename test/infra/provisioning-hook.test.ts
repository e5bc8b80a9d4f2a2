/**
 * The pre-provisioning hook against emulated AWS (moto's IoT and DynamoDB): the registry of expected boxes as
 * the template creates it, things and certificates as fleet provisioning leaves them. The hook lets an
 * expected name through and refuses a bad format, an unregistered name, a name registered for another claim,
 * a name already bound to another certificate, and answers "no" (not an error) when it cannot look.
 */
import t from 'tap';
import {
  CreateTableCommand,
  DynamoDBClient,
  PutItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { IoTClient } from '@aws-sdk/client-iot';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildLambdas } from '../../infra-cfn/build.js';
import {
  createProvisioningHook,
  decideProvisioning,
  type PreProvisioningHookInput,
} from '../../infra-cfn/lambda/provisioning-hook.js';
import { freePort } from '../harness/net.js';
import { issueCert, makeCa } from '../harness/pki.js';
import { tempDir } from '../harness/tmp.js';
import { loadTemplate } from './cfn-model.js';
import { registerDevice } from './fixtures.js';
import { startMotoValidCerts } from './moto-iot.js';

const CLAIM = 'c1'.repeat(32);
const OTHER_CLAIM = 'c2'.repeat(32);

t.test('pre-provisioning hook', async (t) => {
  const moto = await startMotoValidCerts(t);
  const cfg = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
  const iot = new IoTClient(cfg);
  const dynamodb = new DynamoDBClient(cfg);
  t.teardown(() => [iot, dynamodb].forEach((c) => c.destroy()));

  // The registry table exactly as iot.yaml declares it (key schema and attribute types).
  const reg = loadTemplate('iot.yaml').Resources.DeviceRegistry?.Properties as {
    AttributeDefinitions: { AttributeName: string; AttributeType: 'S' }[];
    KeySchema: { AttributeName: string; KeyType: 'HASH' }[];
  };
  t.same(reg.KeySchema, [{ AttributeName: 'thing', KeyType: 'HASH' }], 'registry keyed by thing name');
  await dynamodb.send(
    new CreateTableCommand({
      TableName: 'expected',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: reg.AttributeDefinitions,
      KeySchema: reg.KeySchema,
    }),
  );
  const expect = (item: Record<string, AttributeValue>) =>
    dynamodb.send(new PutItemCommand({ TableName: 'expected', Item: item }));
  await expect({ thing: { S: 'apt-12-meterbox' }, installer: { S: 'acme' } });
  await expect({ thing: { S: 'apt-13-meterbox' }, claimCertificateId: { S: OTHER_CLAIM } });
  await expect({ thing: { S: 'apt-14-meterbox' }, claimCertificateId: { S: CLAIM } });

  // apt-14 was provisioned before: a thing with its certificate attached.
  const ca = await makeCa();
  const earlier = await registerDevice(iot, ca, 'apt-14-meterbox');
  await expect({ thing: { S: 'apt-20-meterbox' } });
  const newKey = await issueCert(ca, { cn: 'new' });

  const request = (
    thing: unknown,
    over: Partial<PreProvisioningHookInput> = {},
  ): PreProvisioningHookInput => ({
    claimCertificateId: CLAIM,
    certificateId: newKey.fingerprint,
    certificatePem: newKey.certPem,
    templateArn: 'arn:aws:iot:eu-west-1:123456789012:provisioningtemplate/meterlink-meterbox',
    clientId: '221a6d10-9c7f-42f1-9153-e52e6fc869c1',
    parameters: thing === undefined ? {} : { ThingName: thing as string },
    ...over,
  });
  const deps = { iot, dynamodb, registryTable: 'expected' };
  const decide = async (input: PreProvisioningHookInput) => {
    const d = await decideProvisioning(input, deps);
    return d.allow ? 'allow' : d.reason;
  };

  t.test('an expected name is let through, the validated name passed on', async (t) => {
    const logs: string[] = [];
    const hook = createProvisioningHook({ ...deps, log: (l) => logs.push(l) });
    t.same(await hook(request('apt-12-meterbox')), {
      allowProvisioning: true,
      parameterOverrides: { ThingName: 'apt-12-meterbox' },
    });
    t.match(JSON.parse(logs[0] ?? '{}'), { msg: 'provisioning allowed', thing: 'apt-12-meterbox' });
    t.equal(
      await decide(request('apt-14-meterbox', { certificateId: earlier.id })),
      'allow',
      're-run with the same certificate',
    );
  });

  t.test('a bad format is refused before anything is looked up', async (t) => {
    for (const name of ['', 'a/b', 'apt 12', 'x'.repeat(129), '#', undefined])
      t.equal(await decide(request(name)), 'BAD_THING_NAME', JSON.stringify(name));
    t.equal(await decide(request(['apt-12-meterbox'])), 'BAD_THING_NAME', 'not a string');
  });

  t.test('an unregistered name is refused', async (t) => {
    const logs: string[] = [];
    const hook = createProvisioningHook({ ...deps, log: (l) => logs.push(l) });
    t.same(await hook(request('apt-99-meterbox')), { allowProvisioning: false });
    t.match(JSON.parse(logs[0] ?? '{}'), {
      msg: 'provisioning refused',
      reason: 'NOT_EXPECTED',
      thing: 'apt-99-meterbox',
    });
  });

  t.test("a name registered for another installer's claim is refused", async (t) => {
    t.equal(await decide(request('apt-13-meterbox')), 'WRONG_CLAIM');
    t.equal(await decide(request('apt-13-meterbox', { claimCertificateId: OTHER_CLAIM })), 'allow');
  });

  t.test('a name already bound to another certificate is refused', async (t) => {
    t.equal(await decide(request('apt-14-meterbox')), 'BOUND_TO_OTHER_CERT');
    t.equal(await decide(request('apt-20-meterbox')), 'allow', 'a registered name with no thing yet');
  });

  t.test('a box rotating its key with its own certificate keeps its name, and only its own', async (t) => {
    // apt-14 is registered for the installer's claim; the box now provisions with its current certificate.
    t.equal(await decide(request('apt-14-meterbox', { claimCertificateId: earlier.id })), 'allow');
    t.equal(
      await decide(request('apt-12-meterbox', { claimCertificateId: earlier.id })),
      'allow',
      'another registered name with no certificate: as from any claim',
    );
    t.equal(
      await decide(request('apt-13-meterbox', { claimCertificateId: earlier.id })),
      'WRONG_CLAIM',
      "another installer's name is not its own",
    );
  });

  t.test('an unreachable registry or IoT refuses (the box retries), never throws', async (t) => {
    const dead = { ...cfg, endpoint: `http://127.0.0.1:${await freePort()}`, maxAttempts: 1 };
    const deadDb = new DynamoDBClient(dead);
    const deadIot = new IoTClient(dead);
    t.teardown(() => [deadDb, deadIot].forEach((c) => c.destroy()));
    const hook = createProvisioningHook({ ...deps, dynamodb: deadDb, log: () => {} });
    t.same(await hook(request('apt-12-meterbox')), { allowProvisioning: false });
    t.equal(
      await decideProvisioning(request('apt-12-meterbox'), { ...deps, iot: deadIot }).then((d) =>
        d.allow ? 'allow' : d.reason,
      ),
      'LOOKUP_FAILED',
    );
  });

  t.test('the bundled hook answers from its environment (moto)', async (t) => {
    const out = await tempDir(t, 'meterlink-hook-');
    const built = await buildLambdas(out);
    t.ok(
      built.some((b) => b.name === 'provisioning-hook'),
      'build.ts bundles the hook',
    );
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_REGION: moto.region,
      AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
      AWS_ENDPOINT_URL_IOT: moto.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint,
      REGISTRY_TABLE: 'expected',
    });
    const log = console.log;
    console.log = () => {};
    t.teardown(() => {
      console.log = log;
      process.env = saved;
    });
    const mod = (await import(pathToFileURL(join(out, 'provisioning-hook', 'index.mjs')).href)) as {
      handler: (e: PreProvisioningHookInput) => Promise<unknown>;
    };
    t.same(await mod.handler(request('apt-20-meterbox')), {
      allowProvisioning: true,
      parameterOverrides: { ThingName: 'apt-20-meterbox' },
    });
    t.same(await mod.handler(request('apt-98-meterbox')), { allowProvisioning: false });
  });
});

t.test('the provisioning template calls the hook, which IoT may invoke for this template only', async (t) => {
  const r = loadTemplate('iot.yaml').Resources;
  const tpl = r.ProvisioningTemplate?.Properties as { PreProvisioningHook?: { TargetArn: unknown } };
  t.same(tpl.PreProvisioningHook?.TargetArn, { 'Fn::GetAtt': ['HookFunction', 'Arn'] });
  const perm = r.HookPermission?.Properties as Record<string, unknown>;
  t.match(perm, {
    Action: 'lambda:InvokeFunction',
    Principal: 'iot.amazonaws.com',
    SourceAccount: { Ref: 'AWS::AccountId' },
  });
  t.match(JSON.stringify(perm.SourceArn), /provisioningtemplate\/\$\{Project\}-meterbox/);
  t.equal(r.DeviceRegistry?.Type, 'AWS::DynamoDB::Table');
  t.equal((r.DeviceRegistry as { DeletionPolicy?: string }).DeletionPolicy, 'Retain');
});
