/** One line of progress per provisioning step: what happened, and to what. */
export type StepStatus =
  'created' | 'updated' | 'unchanged' | 'written' | 'would' | 'ok' | 'warn' | 'fail' | 'info';

export type Reporter = (status: StepStatus, what: string) => void;

export function lineReporter(write: (text: string) => void): Reporter {
  return (status, what) => write(`${status.toUpperCase().padEnd(9)} ${what}\n`);
}

export const silentReporter: Reporter = () => undefined;
