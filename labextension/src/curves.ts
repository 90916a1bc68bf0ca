/**
 * Training curves as SVG path data, computed without the DOM: the panel
 * draws them with plain <path> elements, so no chart library is needed.
 */

/** One chart: a metric and its validation twin (`loss` and `val_loss`). */
export interface Chart {
  title: string;
  series: Series[];
  /** Value range over every series of the chart. */
  min: number;
  max: number;
  /** First and last epoch numbers: the x axis. */
  first: number;
  last: number;
}

export interface Series {
  key: string;
  /** Validation series are drawn dashed. */
  validation: boolean;
  points: Array<[number, number | null]>;
}

const IGNORED = new Set(['epoch']);

/**
 * Groups a run's per-epoch history into charts: one per metric, its
 * training and validation series together, `loss` first.
 */
export function chartsOf(
  history: ReadonlyArray<Record<string, number | null>>
): Chart[] {
  const keys = new Set<string>();
  for (const row of history) {
    for (const key of Object.keys(row)) {
      if (!IGNORED.has(key)) {
        keys.add(key);
      }
    }
  }
  const bases = new Map<string, string[]>();
  for (const key of keys) {
    const base = key.startsWith('val_') ? key.slice(4) : key;
    bases.set(base, [...(bases.get(base) ?? []), key]);
  }
  const names = [...bases.keys()].sort(
    (a, b) =>
      Number(b === 'loss') - Number(a === 'loss') || a.localeCompare(b)
  );
  return names.map(title => {
    const series = (bases.get(title) ?? []).sort().map(key => ({
      key,
      validation: key.startsWith('val_'),
      points: history.map(
        (row, i): [number, number | null] => [
          epochNumber(row, i),
          typeof row[key] === 'number' && Number.isFinite(row[key])
            ? (row[key] as number)
            : null
        ]
      )
    }));
    const values = series.flatMap(s =>
      s.points.map(p => p[1]).filter((v): v is number => v !== null)
    );
    return {
      title,
      series,
      min: values.length ? Math.min(...values) : 0,
      max: values.length ? Math.max(...values) : 1,
      first: history.length ? epochNumber(history[0], 0) : 1,
      last: history.length
        ? epochNumber(history[history.length - 1], history.length - 1)
        : 1
    };
  });
}

/** The registry numbers epochs from 1, as Keras prints them. */
function epochNumber(row: Record<string, number | null>, index: number): number {
  const epoch = row['epoch'];
  return typeof epoch === 'number' ? epoch : index + 1;
}

/** The drawing area of a chart, in SVG user units. */
export interface Box {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/**
 * SVG path data for a series inside `box`; a missing value (NaN during
 * training) breaks the line. A single point becomes a short tick.
 */
export function linePath(series: Series, chart: Chart, box: Box): string {
  const x0 = chart.first;
  const spanX = Math.max(chart.last - x0, 1);
  const spanY = chart.max - chart.min || 1;
  const w = box.width - box.left - box.right;
  const h = box.height - box.top - box.bottom;
  const x = (e: number): number => box.left + ((e - x0) / spanX) * w;
  const y = (v: number): number =>
    box.top + h - ((v - chart.min) / spanY) * h;
  const parts: string[] = [];
  let pen = false;
  for (const [e, v] of series.points) {
    if (v === null) {
      pen = false;
      continue;
    }
    parts.push(`${pen ? 'L' : 'M'}${x(e).toFixed(1)} ${y(v).toFixed(1)}`);
    pen = true;
  }
  if (parts.length === 1) {
    parts.push(`h2`);
  }
  return parts.join(' ');
}
