/**
 * Fleet provisioning's pre-provisioning hook (AWS IoT `PreProvisioningHook` of the provisioning template):
 * decides whether a box holding the shared claim certificate may register the thing name it asks for.
 *
 * The claim certificate is shared by a batch of boxes, so the name a box sends proves nothing. A name is let
 * through only when
 * - it is a valid thing name (the agent's config rule: 1–128 of letters, digits, `:`, `_`, `-`);
 * - operators registered it beforehand in the registry of expected boxes (a DynamoDB table keyed by `thing`;
 *   infra-cfn/README.md, "Provisioning") — optionally for one claim certificate only (`claimCertificateId`),
 *   so that one installer's claim cannot take another installer's names;
 * - no other certificate is attached to that thing already: a box re-provisioned with a new key is detached
 *   from its old certificate by an operator first, never silently taken over.
 * A box rotating its key through the template (`meterlink provision rotate --template`) provisions with its
 * current certificate in place of a claim: that certificate is attached to the thing it asks for, which proves
 * the name is its own, so the claim restriction does not apply and the old certificate may stay attached
 * until the box deactivates it.
 * Anything the hook cannot check (registry or IoT unreachable) refuses: the box retries provisioning later.
 */
import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListThingPrincipalsCommand, type IoTClient } from '@aws-sdk/client-iot';
import { isValidThingName } from '../../cloud-contract/topics.js';
import type { LogLine } from './metrics.js';

/** What AWS IoT sends the hook (developer guide, "Pre-provisioning hooks"). */
export interface PreProvisioningHookInput {
  readonly claimCertificateId: string;
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly templateArn: string;
  readonly clientId: string;
  readonly parameters: Readonly<Record<string, string>>;
}

/** What the hook answers: provisioning proceeds only with `allowProvisioning: true`. */
export interface PreProvisioningHookOutput {
  readonly allowProvisioning: boolean;
  readonly parameterOverrides?: Readonly<Record<string, string>>;
}

export type HookRefusal =
  | 'BAD_THING_NAME' // missing or not a thing name
  | 'NOT_EXPECTED' // not in the registry of expected boxes
  | 'WRONG_CLAIM' // registered for another claim certificate
  | 'BOUND_TO_OTHER_CERT' // the thing exists with another certificate attached
  | 'LOOKUP_FAILED'; // the registry or IoT did not answer

export type HookDecision =
  | { readonly allow: true; readonly thing: string }
  | { readonly allow: false; readonly reason: HookRefusal; readonly detail: string; readonly thing?: string };

export interface ProvisioningHookDeps {
  readonly iot: Pick<IoTClient, 'send'>;
  readonly dynamodb: Pick<DynamoDBClient, 'send'>;
  /** The registry of expected boxes: partition key `thing` (S). */
  readonly registryTable: string;
  readonly log?: LogLine;
}

const CERT_ARN = /:cert\/([0-9a-f]{64})$/;

export async function decideProvisioning(
  input: PreProvisioningHookInput,
  deps: ProvisioningHookDeps,
): Promise<HookDecision> {
  const thing = input.parameters?.ThingName;
  if (!isValidThingName(thing))
    return {
      allow: false,
      reason: 'BAD_THING_NAME',
      detail: `ThingName ${JSON.stringify(thing ?? null)} is not 1-128 letters, digits, ":", "_" or "-"`,
    };

  const attached: string[] = [];
  try {
    let nextToken: string | undefined;
    do {
      const out = await deps.iot.send(new ListThingPrincipalsCommand({ thingName: thing, nextToken }));
      for (const arn of out.principals ?? []) attached.push(CERT_ARN.exec(arn)?.[1] ?? arn);
      nextToken = out.nextToken || undefined;
    } while (nextToken);
  } catch (err) {
    // A thing that does not exist yet has no principals: the template creates it.
    if (errName(err) !== 'ResourceNotFoundException')
      return {
        allow: false,
        reason: 'LOOKUP_FAILED',
        detail: `IoT ListThingPrincipals: ${errName(err)}`,
        thing,
      };
  }
  const rotation = attached.includes(input.claimCertificateId);

  let expected: Record<string, { S?: string }> | undefined;
  try {
    const out = await deps.dynamodb.send(
      new GetItemCommand({
        TableName: deps.registryTable,
        Key: { thing: { S: thing } },
        ConsistentRead: true,
      }),
    );
    expected = out.Item as Record<string, { S?: string }> | undefined;
  } catch (err) {
    return { allow: false, reason: 'LOOKUP_FAILED', detail: `registry: ${errName(err)}`, thing };
  }
  if (!expected)
    return { allow: false, reason: 'NOT_EXPECTED', detail: `${thing} is not in the registry`, thing };
  const claim = expected.claimCertificateId?.S;
  if (claim && claim !== input.claimCertificateId && !rotation)
    return {
      allow: false,
      reason: 'WRONG_CLAIM',
      detail: `${thing} is registered for claim certificate ${claim}, not ${input.claimCertificateId}`,
      thing,
    };

  const others = attached.filter(
    (id) => id !== input.certificateId && !(rotation && id === input.claimCertificateId),
  );
  if (others.length > 0)
    return {
      allow: false,
      reason: 'BOUND_TO_OTHER_CERT',
      detail: `${thing} already has certificate ${others.join(', ')} attached`,
      thing,
    };
  return { allow: true, thing };
}

const errName = (err: unknown) => (err as { name?: string })?.name ?? 'error';

/** The Lambda handler: one JSON log line per decision, never a throw (a throw is a refusal without a reason). */
export function createProvisioningHook(
  deps: ProvisioningHookDeps,
): (input: PreProvisioningHookInput) => Promise<PreProvisioningHookOutput> {
  const log = deps.log ?? ((line: string) => console.log(line));
  return async (input) => {
    const d = await decideProvisioning(input, deps);
    log(
      JSON.stringify({
        level: d.allow ? 'info' : 'warn',
        msg: d.allow ? 'provisioning allowed' : 'provisioning refused',
        ...(d.allow ? {} : { reason: d.reason, detail: d.detail }),
        thing: d.thing,
        certificateId: input.certificateId,
        claimCertificateId: input.claimCertificateId,
        clientId: input.clientId,
      }),
    );
    // The validated name goes back as an override, so the template registers exactly what was checked.
    return d.allow
      ? { allowProvisioning: true, parameterOverrides: { ThingName: d.thing } }
      : { allowProvisioning: false };
  };
}
