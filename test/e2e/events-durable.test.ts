import t from 'tap';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { spawnMeterlink } from '../harness/cli.js';
import { endAfterMqtt } from '../harness/exit.js';
import { AGENT_START_MS, waitFor } from '../harness/wait.js';
import { startRig } from './helpers.js';

await t.test(
  'an event raised while offline survives a SIGKILL and is published after the restart',
  async (t) => {
    const rig = await startRig(t);
    const eventsFile = join(dirname(rig.bufferPath), 'events.jsonl');
    let agent = spawnMeterlink(['run', '--config', rig.configFile]);
    t.teardown(() => agent.kill('SIGKILL'));
    await waitFor(() => rig.cloud.events.some((e) => e.event === 'agent_started'), {
      what: 'agent online',
      // A start from source (transpiled on load, with coverage) took over 30 s at load 10.
      timeout: AGENT_START_MS,
    });

    // Offline, then the meter becomes unreadable: the event can only wait.
    await rig.broker.kill();
    await rig.pty.unplug();
    await waitFor(
      async () => (await readFile(eventsFile, 'utf8').catch(() => '')).includes('"meter_error"'),
      {
        what: 'meter_error queued on disk',
        timeout: 30_000,
      },
    );
    t.notOk(
      rig.cloud.events.some((e) => e.event === 'meter_error'),
      'not published yet (broker down)',
    );
    await agent.kill('SIGKILL');

    await rig.pty.replug();
    await rig.broker.start();
    agent = spawnMeterlink(['run', '--config', rig.configFile]);
    const ev = await waitFor(() => rig.cloud.events.find((e) => e.event === 'meter_error'), {
      what: 'the queued meter_error, after the restart',
      // A start from source (transpiled on load, with coverage) took over 30 s at load 10.
      timeout: AGENT_START_MS,
    });
    t.match(ev, { event: 'meter_error', data: { meter: 'main' } });
    await waitFor(async () => !(await readFile(eventsFile, 'utf8')).includes('"meter_error"'), {
      what: 'published events removed from the queue file',
    });
    await agent.kill('SIGTERM');
    t.equal(agent.child.exitCode, 0);
  },
);

await endAfterMqtt(t);
