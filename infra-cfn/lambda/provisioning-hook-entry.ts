/** Lambda entry point of the pre-provisioning hook (bundled by infra-cfn/build.ts to dist/provisioning-hook/). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IoTClient } from '@aws-sdk/client-iot';
import { createProvisioningHook, type PreProvisioningHookInput } from './provisioning-hook.js';

const hook = createProvisioningHook({
  iot: new IoTClient({}),
  dynamodb: new DynamoDBClient({}),
  registryTable: process.env.REGISTRY_TABLE ?? '',
});

export const handler = (event: PreProvisioningHookInput) => hook(event);
