/**
 * CloudWatch metrics through the Embedded Metric Format: one JSON log line per invocation, no PutMetricData
 * call (no IAM permission, no latency on the hot path).
 */
export interface InvocationCounts {
  readonly records: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly retried: number;
  readonly samplesWritten: number;
  readonly samplesRejectedByStore: number;
  readonly rejectedByReason: Readonly<Record<string, number>>;
}

export type LogLine = (line: string) => void;

export function emitMetrics(log: LogLine, namespace: string, c: InvocationCounts, timestamp: number): void {
  log(
    JSON.stringify({
      _aws: {
        Timestamp: timestamp,
        CloudWatchMetrics: [
          {
            Namespace: namespace,
            Dimensions: [[]],
            Metrics: [
              { Name: 'Records', Unit: 'Count' },
              { Name: 'AcceptedRecords', Unit: 'Count' },
              { Name: 'RejectedRecords', Unit: 'Count' },
              { Name: 'RetriedRecords', Unit: 'Count' },
              { Name: 'SamplesWritten', Unit: 'Count' },
              { Name: 'SamplesRejectedByStore', Unit: 'Count' },
            ],
          },
        ],
      },
      Records: c.records,
      AcceptedRecords: c.accepted,
      RejectedRecords: c.rejected,
      RetriedRecords: c.retried,
      SamplesWritten: c.samplesWritten,
      SamplesRejectedByStore: c.samplesRejectedByStore,
    }),
  );
  for (const [reason, n] of Object.entries(c.rejectedByReason))
    log(
      JSON.stringify({
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [
            {
              Namespace: namespace,
              Dimensions: [['Reason']],
              Metrics: [{ Name: 'Rejected', Unit: 'Count' }],
            },
          ],
        },
        Reason: reason,
        Rejected: n,
      }),
    );
}
