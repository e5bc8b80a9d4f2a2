/**
 * `meterlink provision <step>`: device key and CSR, a certificate from AWS IoT (`register`) or by fleet
 * provisioning (`fleet`), `check`, and `rotate`. The work is in agent/provision/; this file is the CLI.
 */
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CliError, ExitCode, type CliIo, type CommandModule } from '../cli.js';
import { runChecks } from '../provision/check.js';
import { ensureDeviceKey } from '../provision/device-key.js';
import { isProvisionError } from '../provision/errors.js';
import { fleetProvision } from '../provision/fleet.js';
import { DEFAULT_CONFIG, DEFAULT_DIR, layout } from '../provision/layout.js';
import { register } from '../provision/register.js';
import { lineReporter } from '../provision/report.js';
import { rotate } from '../provision/rotate.js';

async function guard(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (isProvisionError(err))
      throw new CliError(err.message, err.code === 'CONFIG_INVALID' ? ExitCode.badConfig : ExitCode.failure);
    throw err;
  }
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new CliError(`--port ${v}: not a TCP port`, ExitCode.usage);
  return n;
}

function parseParam(v: string, prev: Record<string, string>): Record<string, string> {
  const i = v.indexOf('=');
  if (i <= 0) throw new CliError(`--param ${v}: write it as NAME=VALUE`, ExitCode.usage);
  return { ...prev, [v.slice(0, i)]: v.slice(i + 1) };
}

const dirOption = () =>
  new Option('--dir <dir>', 'where the key, CSR, certificate and CA live').default(DEFAULT_DIR);
const configOption = () =>
  new Option('--config <file>', 'the config file to write thing/cloud into').default(DEFAULT_CONFIG);

function addKey(provision: Command, io: CliIo): void {
  provision
    .command('key')
    .description(
      'create the device key (EC P-256, mode 0600, never leaves the box) and a CSR with CN = thing',
    )
    .requiredOption('--thing <name>', 'AWS IoT thing name (also the MQTT client id)')
    .addOption(dirOption())
    .option('--force', 'replace an existing key (its certificate stops working)')
    .addHelpText('after', '\nExample:\n  sudo meterlink provision key --thing apt-12-meterbox\n')
    .action((o: { thing: string; dir: string; force?: boolean }) =>
      guard(async () => {
        const files = layout(resolve(o.dir));
        await ensureDeviceKey({
          thing: o.thing,
          files,
          force: o.force ?? false,
          report: lineReporter(io.out),
        });
        io.out(
          `Next: meterlink provision register --thing ${o.thing} --policy POLICY  (or provision fleet)\n`,
        );
      }),
    );
}

function addRegister(provision: Command, io: CliIo): void {
  provision
    .command('register')
    .description(
      "get an active certificate for the box's CSR from AWS IoT with the installer's AWS credentials, " +
        'attach it to the thing and policy, and write certificate, CA and config',
    )
    .requiredOption('--thing <name>', 'AWS IoT thing name (created if missing)')
    .requiredOption('--policy <name>', 'AWS IoT policy to attach (made by the meterlink stack)')
    .option('--region <region>', 'AWS region (default: AWS_REGION / your AWS profile)')
    .option('--endpoint-url <url>', 'AWS IoT API endpoint override (e.g. a local moto_server)')
    .option(
      '--endpoint <host>',
      "MQTT endpoint to write (a custom domain); default: the account's iot:Data-ATS endpoint",
    )
    .addOption(
      new Option('--port <port>', 'MQTT port written to the config (8883, or 443 with ALPN)')
        .default(8883)
        .argParser(parsePort),
    )
    .addOption(dirOption())
    .addOption(configOption())
    .option('--dry-run', 'show what would change, change nothing')
    .addHelpText(
      'after',
      '\nExample:\n  sudo -E meterlink provision register --thing apt-12-meterbox --policy meterlink-device --region eu-west-1\n',
    )
    .action(
      (o: {
        thing: string;
        policy: string;
        region?: string;
        endpointUrl?: string;
        endpoint?: string;
        port: number;
        dir: string;
        config: string;
        dryRun?: boolean;
      }) =>
        guard(async () => {
          const res = await register({
            thing: o.thing,
            policy: o.policy,
            region: o.region,
            endpointUrl: o.endpointUrl,
            endpoint: o.endpoint,
            port: o.port,
            files: layout(resolve(o.dir)),
            configPath: resolve(o.config),
            dryRun: o.dryRun ?? false,
            report: lineReporter(io.out),
          });
          io.out(
            o.dryRun
              ? res.changed
                ? 'Dry run: nothing was changed.\n'
                : 'Dry run: everything is already in place.\n'
              : res.changed
                ? `Registered ${o.thing}. Next: meterlink provision check --config ${o.config}\n`
                : 'Nothing to do: everything was already in place.\n',
          );
        }),
    );
}

function addFleet(provision: Command, io: CliIo): void {
  provision
    .command('fleet')
    .description(
      "fleet provisioning by claim: with the claim certificate, get a certificate for the box's own key over " +
        'MQTT and register the thing with a provisioning template; then connect with the new certificate',
    )
    .requiredOption('--thing <name>', 'thing name (CN of the CSR; passed to the template as ThingName)')
    .requiredOption('--claim-cert <file>', 'claim certificate (PEM)')
    .requiredOption('--claim-key <file>', 'claim private key (PEM)')
    .requiredOption('--template <name>', 'fleet provisioning template name')
    .requiredOption('--endpoint <host>', 'AWS IoT data endpoint (xxxx-ats.iot.REGION.amazonaws.com)')
    .addOption(
      new Option('--port <port>', 'MQTT port (8883, or 443 with ALPN)').default(8883).argParser(parsePort),
    )
    .option('--ca <file>', 'CA to trust for the endpoint (default: the bundled Amazon Root CA 1)')
    .option(
      '--param <name=value>',
      'template parameter (repeatable)',
      parseParam,
      {} as Record<string, string>,
    )
    .addOption(dirOption())
    .addOption(configOption())
    .addHelpText(
      'after',
      '\nExample:\n  sudo meterlink provision fleet --thing apt-12-meterbox --claim-cert claim.crt --claim-key claim.key \\\n' +
        '    --template meterlink-fleet --endpoint a1b2c3-ats.iot.eu-west-1.amazonaws.com --param SerialNumber=12345\n',
    )
    .action(
      (o: {
        thing: string;
        claimCert: string;
        claimKey: string;
        template: string;
        endpoint: string;
        port: number;
        ca?: string;
        param: Record<string, string>;
        dir: string;
        config: string;
      }) =>
        guard(async () => {
          await fleetProvision({
            thing: o.thing,
            claimCert: resolve(o.claimCert),
            claimKey: resolve(o.claimKey),
            template: o.template,
            endpoint: o.endpoint,
            port: o.port,
            caFile: o.ca ? resolve(o.ca) : undefined,
            parameters: o.param,
            files: layout(resolve(o.dir)),
            configPath: resolve(o.config),
            report: lineReporter(io.out),
          });
          io.out(`Provisioned ${o.thing}; the claim certificate is no longer needed on this box.\n`);
        }),
    );
}

function addCheck(provision: Command, io: CliIo): void {
  provision
    .command('check')
    .description(
      'check the provisioned files (present, safe permissions, key matches certificate, CN = thing, expiry, ' +
        'CA) and a TLS handshake with the endpoint; each line OK or what to do',
    )
    .addOption(configOption())
    .option('--json', 'print the results as JSON')
    .option('--timeout <ms>', 'TLS handshake timeout', (v) => Number(v), 10_000)
    .addHelpText(
      'after',
      '\nExample:\n  sudo meterlink provision check --config /etc/meterlink/config.yaml\n',
    )
    .action((o: { config: string; json?: boolean; timeout: number }) =>
      guard(async () => {
        const results = await runChecks({ configPath: resolve(o.config), timeoutMs: o.timeout });
        if (o.json) io.out(JSON.stringify(results, null, 2) + '\n');
        else
          for (const r of results)
            io.out(`${r.status.toUpperCase().padEnd(5)} ${r.what}${r.detail ? `: ${r.detail}` : ''}\n`);
        const failed = results.filter((r) => r.status === 'fail').length;
        if (failed > 0)
          throw new CliError(`${failed} check(s) failed; see the lines above`, ExitCode.failure);
      }),
    );
}

function addRotate(provision: Command, io: CliIo): void {
  provision
    .command('rotate')
    .description(
      'new key and CSR, a certificate for them, a test connection with it, then an atomic switch of the config; ' +
        'the old key and certificate stay in use until the new one has connected',
    )
    .addOption(configOption())
    .option(
      '--policy <name>',
      'register the new certificate with AWS IoT (installer credentials) and attach this policy',
    )
    .option('--region <region>', 'AWS region (with --policy)')
    .option('--endpoint-url <url>', 'AWS IoT API endpoint override (with --policy)')
    .option(
      '--template <name>',
      'or: get the new certificate by fleet provisioning with this template, using the current certificate',
    )
    .option(
      '--param <name=value>',
      'template parameter (repeatable, with --template)',
      parseParam,
      {} as Record<string, string>,
    )
    .option('--timeout <ms>', 'how long the new certificate may take to connect', (v) => Number(v), 20_000)
    .addHelpText(
      'after',
      '\nExamples:\n  sudo -E meterlink provision rotate --policy meterlink-device --region eu-west-1\n' +
        '  sudo meterlink provision rotate --template meterlink-rotate\n',
    )
    .action(
      (o: {
        config: string;
        policy?: string;
        region?: string;
        endpointUrl?: string;
        template?: string;
        param: Record<string, string>;
        timeout: number;
      }) =>
        guard(async () => {
          if (!o.policy === !o.template)
            throw new CliError(
              'rotate needs exactly one of --policy (AWS API) or --template (fleet)',
              ExitCode.usage,
            );
          const res = await rotate({
            configPath: resolve(o.config),
            via: o.policy
              ? { kind: 'register', policy: o.policy, region: o.region, endpointUrl: o.endpointUrl }
              : { kind: 'fleet', template: o.template ?? '', parameters: o.param },
            connectTimeoutMs: o.timeout,
            report: lineReporter(io.out),
          });
          io.out(
            `Rotated: the agent now uses ${res.cert}. Restart it (systemctl restart meterlink); then retire the ` +
              `old certificate ${res.oldCertificateId ?? ''} in AWS IoT (deactivate, detach, delete).\n`,
          );
        }),
    );
}

export const provisionCommand: CommandModule = {
  register(program, io) {
    const provision = program
      .command('provision')
      .description(
        'device key + CSR, certificate via AWS IoT or fleet provisioning, config written; check; rotate',
      )
      .addHelpText(
        'after',
        '\nExample (a blank box):\n' +
          '  sudo meterlink provision key --thing apt-12-meterbox\n' +
          '  sudo -E meterlink provision register --thing apt-12-meterbox --policy meterlink-device\n' +
          '  sudo meterlink provision check\n',
      );
    addKey(provision, io);
    addRegister(provision, io);
    addFleet(provision, io);
    addCheck(provision, io);
    addRotate(provision, io);
    for (const sub of provision.commands)
      sub.configureOutput({ writeOut: io.out, writeErr: io.err }).exitOverride();
  },
};
