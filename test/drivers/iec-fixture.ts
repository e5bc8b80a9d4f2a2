import { readFileSync } from 'node:fs';

/** A capture in test/drivers/fixtures/iec62056/: hex lines, `#` lines are the source note. */
export const iecFixture = (name: string): Buffer =>
  Buffer.from(
    readFileSync(new URL(`fixtures/iec62056/${name}`, import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join(''),
    'hex',
  );
