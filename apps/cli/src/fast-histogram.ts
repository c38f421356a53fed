import type { Registry } from 'prom-client';

/** One labelled series of a `FastHistogram`: observing costs a bucket search and three additions, no allocation. */
export interface HistogramChild {
  /** Records one observation, in seconds. */
  observe(seconds: number): void;
}

/**
 * A Prometheus histogram for hot paths. prom-client's `Histogram.observe` hashes its labels and allocates on
 * every call; here each labelled series is a child resolved once (`child(labels)`), holding its bucket counts in
 * a typed array, and the exposition is built only when /metrics is scraped. Registered on a prom-client registry
 * through its custom-metric interface (`get()`), so it is exposed beside the others in the same text format.
 */
export class FastHistogram {
  private readonly series: { labels: Record<string, string>; counts: Float64Array; sum: number; count: number }[] = [];
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series for `labels` (created on first use: call it once, outside the hot path). */
  child(labels: Record<string, string> = {}): HistogramChild {
    const s = { labels, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
    this.series.push(s);
    const bounds = this.buckets;
    return {
      observe(seconds: number): void {
        s.sum += seconds;
        s.count++;
        for (let i = 0; i < bounds.length; i++) {
          if (seconds <= (bounds[i] as number)) {
            s.counts[i] = (s.counts[i] as number) + 1;
            return;
          }
        }
      },
    };
  }

  /** prom-client's custom-metric interface: the exposition of every series, cumulative buckets as Prometheus wants. */
  get(): { name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] } {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const s of this.series) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: this.buckets[i] as number }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A metric whose samples are read at scrape time from wherever they live (counters kept elsewhere, say). */
export function scrapedMetric(
  registry: Registry,
  name: string,
  help: string,
  type: 'counter' | 'gauge',
  read: () => { labels?: Record<string, string>; value: number }[],
): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => ({ name, help, type, aggregator: 'sum', values: read().map((v) => ({ labels: v.labels ?? {}, value: v.value })) }),
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
