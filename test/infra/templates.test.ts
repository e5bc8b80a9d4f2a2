/**
 * The CloudFormation templates: cfn-lint (installed here and in CI), informational checks included, reports
 * nothing on any template; every stateful resource has an explicit DeletionPolicy/UpdateReplacePolicy (Retain,
 * or Delete with its reason); every IAM/resource policy in them has no wildcard actions in Allow statements,
 * and every wildcard resource carries a `# wildcard-resource: why` comment; each Lambda function has a role of
 * its own. What each role allows is checked against the code in iam.test.ts.
 */
import t from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument, isMap, isPair, isScalar, isSeq, visit, type Node, type Pair } from 'yaml';
import { spawnLogged } from '../harness/process.js';

const dir = join(import.meta.dirname, '..', '..', 'infra-cfn', 'templates');

interface Finding {
  file: string;
  line: number;
  problem: string;
}

const POLICY_PROPS = new Set(['PolicyDocument', 'KeyPolicy']);

/** '*', or an ARN whose resource part is only a resource type and '*' (any cert, any client...). */
function isWildcardResource(v: string): boolean {
  if (v === '*') return true;
  if (!v.startsWith('arn:')) return false;
  // ${AWS::Partition} and friends contain colons: replace substitutions before splitting the ARN.
  const resource = v
    .replace(/\$\{[^}]*\}/g, 'x')
    .split(':')
    .slice(5)
    .join(':');
  return resource === '*' || /^[a-z-]+\/\*$/.test(resource);
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

function scalars(node: unknown): { value: string; offset: number }[] {
  if (isScalar(node))
    return typeof node.value === 'string' ? [{ value: node.value, offset: node.range?.[0] ?? 0 }] : [];
  if (isSeq(node)) return node.items.flatMap(scalars);
  return []; // an intrinsic function (!Ref, !GetAtt, !If ...) names one resource
}

/** Checks every policy statement in one template text. */
export function checkPolicies(file: string, text: string): Finding[] {
  const doc = parseDocument(text, { logLevel: 'silent' });
  const findings: Finding[] = [];
  const statements: Node[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && POLICY_PROPS.has(String(pair.key.value)) && isMap(pair.value)) {
        const st = pair.value.get('Statement', true);
        if (isSeq(st))
          for (const item of st.items) {
            // `!If [cond, statement, !Ref AWS::NoValue]` inside a Statement list
            if (isSeq(item)) for (const alt of item.items) if (isMap(alt)) statements.push(alt);
            if (isMap(item)) statements.push(item);
          }
      }
    },
  });
  for (const st of statements) {
    if (!isMap(st)) continue;
    const effect = String((st.get('Effect', true) as { value?: unknown } | undefined)?.value ?? '');
    const pairs = st.items as Pair[];
    const at = (p: Pair) => lineOf(text, (p.key as Node).range?.[0] ?? 0);
    for (const p of pairs) {
      if (!isPair(p) || !isScalar(p.key)) continue;
      const key = String(p.key.value);
      // Deny statements may use wildcards: they only ever take permissions away.
      if (effect !== 'Allow') continue;
      if (key === 'NotAction' || key === 'NotResource')
        findings.push({ file, line: at(p), problem: `${key} in an Allow statement` });
      if (key === 'Action')
        for (const a of scalars(p.value))
          if (a.value.includes('*'))
            findings.push({ file, line: lineOf(text, a.offset), problem: `wildcard action ${a.value}` });
      if (key === 'Resource') {
        const documented = /wildcard-resource:\s*\S/.test((p.key as Node).commentBefore ?? '');
        for (const r of scalars(p.value))
          if (isWildcardResource(r.value) && !documented)
            findings.push({
              file,
              line: lineOf(text, r.offset),
              problem: `undocumented wildcard resource ${r.value}`,
            });
      }
    }
  }
  return findings;
}

t.test('cfn-lint: no errors, warnings or informational findings on any template', async (t) => {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).map((f) => join(dir, f));
  t.ok(files.length >= 7, `${files.length} templates`);
  // --include-checks I adds the informational rules, among them I3011 (stateful resources without an explicit
  // DeletionPolicy/UpdateReplacePolicy). An exception is an ignore in the template's Metadata, with its reason.
  const p = spawnLogged('cfn-lint', ['--format', 'parseable', '--include-checks', 'I', '--', ...files]);
  await p.exited();
  const out = p.output();
  const findings = out.split('\n').filter((l) => /:[EWI]\d{4}:/.test(l) || /\[spawn error\]/.test(l));
  t.same(findings, [], 'no cfn-lint findings');
  // Exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational.
  t.equal(p.child.exitCode, 0, `cfn-lint exit code ${p.child.exitCode}\n${out}`);
});

t.test('every stateful resource outlives the stack, or says why not', async (t) => {
  // Resource types holding data or the keys to it. Retain is the rule; Delete needs a comment saying why.
  const stateful =
    /^AWS::(KMS::Key|S3::Bucket|DynamoDB::Table|SecretsManager::Secret|Kinesis::Stream|Logs::LogGroup|SQS::Queue|Timestream::(Database|Table|InfluxDBInstance))$/;
  let checked = 0;
  for (const f of (await readdir(dir)).filter((x) => x.endsWith('.yaml'))) {
    const text = await readFile(join(dir, f), 'utf8');
    const doc = parseDocument(text, { logLevel: 'silent' });
    const resources = doc.get('Resources');
    if (!isMap(resources)) continue;
    for (const pair of resources.items as Pair[]) {
      const r = pair.value;
      if (!isMap(r) || !stateful.test(String(r.get('Type')))) continue;
      checked++;
      const name = `${f}:${String((pair.key as { value?: unknown }).value)}`;
      const del = r.get('DeletionPolicy');
      t.equal(r.get('UpdateReplacePolicy'), del, `${name}: UpdateReplacePolicy = DeletionPolicy`);
      if (del === 'Retain') continue;
      t.equal(del, 'Delete', `${name}: DeletionPolicy Retain, or Delete with a reason`);
      const why = (r.items as Pair[]).find((p) => isScalar(p.key) && p.key.value === 'DeletionPolicy');
      t.match((why?.key as Node | undefined)?.commentBefore ?? '', /\S/, `${name}: the reason for Delete`);
    }
  }
  t.ok(checked >= 12, `${checked} stateful resources checked`);
});

t.test('IAM: no wildcard actions, no undocumented wildcard resources', async (t) => {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
  let statements = 0;
  for (const f of files) {
    const text = await readFile(join(dir, f), 'utf8');
    statements += (text.match(/Effect: (Allow|Deny)/g) ?? []).length;
    t.same(checkPolicies(f, text), [], `${f}: policies are least-privilege`);
  }
  t.ok(statements > 40, `${statements} policy statements checked`);
});

t.test('the IAM check catches what it should', async (t) => {
  const bad = [
    'Resources:',
    '  R:',
    '    Type: AWS::IAM::Role',
    '    Properties:',
    '      Policies:',
    '        - PolicyDocument:',
    '            Statement:',
    '              - Effect: Allow',
    '                Action: [s3:*, kinesis:PutRecord]',
    "                Resource: '*'",
    '              - Effect: Allow',
    '                Action: iot:DescribeCertificate',
    "                Resource: !Sub 'arn:aws:iot:eu-west-1:1:cert/*'",
    '              - Effect: Allow',
    '                NotAction: iam:PassRole',
    '                # wildcard-resource: documented',
    "                Resource: '*'",
    '              - Effect: Deny',
    '                Action: s3:*',
    "                Resource: '*'",
    '',
  ].join('\n');
  t.same(
    checkPolicies('bad.yaml', bad).map((f) => `${f.line} ${f.problem}`),
    [
      '9 wildcard action s3:*',
      '10 undocumented wildcard resource *',
      '13 undocumented wildcard resource arn:aws:iot:eu-west-1:1:cert/*',
      '15 NotAction in an Allow statement',
    ],
  );
});

t.test('one role per Lambda function', async (t) => {
  const roles: string[] = [];
  let functions = 0;
  for (const f of (await readdir(dir)).filter((x) => x.endsWith('.yaml'))) {
    const text = await readFile(join(dir, f), 'utf8');
    functions += (text.match(/Type: AWS::Lambda::Function\b/g) ?? []).length;
    for (const m of text.matchAll(/Type: AWS::Lambda::Function[\s\S]*?Role: !GetAtt (\w+)\.Arn/g))
      roles.push(`${f}:${m[1]}`);
  }
  t.ok(functions >= 1, `${functions} functions`);
  t.equal(roles.length, functions, 'each function names its role');
  t.equal(new Set(roles).size, roles.length, roles.join(', '));
});
