/**
 * After a broker restart the cloud subscriber resubscribes on its own, but an agent that reconnects first
 * publishes into a broker that keeps no sessions: the test would miss those messages. This waits until the
 * subscriber receives again, by publishing probes on a topic under its filter that it otherwise ignores.
 */
import { mqtt5 } from 'aws-iot-device-sdk-v2';
import type { CloudSubscriber } from '../harness/cloud-subscriber.js';
import { waitFor } from '../harness/wait.js';

export async function cloudListening(cloud: CloudSubscriber, thing: string): Promise<void> {
  const topic = `meterlink/v1/${thing}/probe`;
  const before = cloud.client.received.filter((m) => m.topic === topic).length;
  await waitFor(
    async () => {
      await cloud.client.client
        .publish({ topicName: topic, qos: mqtt5.QoS.AtLeastOnce, payload: 'probe' })
        .catch(() => undefined);
      return cloud.client.received.filter((m) => m.topic === topic).length > before;
    },
    { what: 'the cloud subscriber back after the broker restart', timeout: 30_000 },
  );
}
