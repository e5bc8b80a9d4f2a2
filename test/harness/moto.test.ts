import t from 'tap';
import {
  CreateThingCommand,
  DescribeEndpointCommand,
  IoTClient,
  ListThingsCommand,
} from '@aws-sdk/client-iot';
import { startMoto } from './moto.js';

t.test('the AWS SDK v3 talks to moto_server', async (t) => {
  const moto = await startMoto(t);
  const iot = new IoTClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials });
  t.teardown(() => iot.destroy());

  const ep = await iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }));
  t.match(
    ep.endpointAddress,
    /-ats\.iot\.eu-west-1\.amazonaws\.com$/,
    'DescribeEndpoint answers an ATS endpoint',
  );

  await iot.send(new CreateThingCommand({ thingName: 'apt-12-meterbox' }));
  const things = await iot.send(new ListThingsCommand({}));
  t.same(
    things.things?.map((x) => x.thingName),
    ['apt-12-meterbox'],
    'state is kept between calls',
  );

  await moto.reset();
  const after = await iot.send(new ListThingsCommand({}));
  t.same(after.things, [], 'reset wipes state');
});
