/**
 * Training curves as SVG path data and axis ticks, computed without the
 * DOM: the panel draws them with plain <path> elements, so no chart library
 * is needed. One chart per metric; several runs overlay in one chart (a
 * colour per run, validation dashed).
 */

import type { Direction } from './model';

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
  /** Which run of the chart (0 for a single run): its colour. */
  run: number;
  /** The legend's text: the key, or "model #id key" when runs overlay. */
  label: string;
}

/** A run's curves: its per-epoch history and a label for the legend. */
export interface RunCurves {
  label: string;
  history: ReadonlyArray<Record<string, number | null>>;
}

const IGNORED = new Set(['epoch']);

/**
 * Groups a run's per-epoch history into charts: one per metric, its
 * training and validation series together, `loss` first.
 */
export function chartsOf(
  history: ReadonlyArray<Record<string, number | null>>
): Chart[] {
  return chartsOfRuns([{ label: '', history }]);
}

/**
 * Charts overlaying several runs: one per metric (`loss` first), each run's
 * training and validation series in it. A metric only some runs have still
 * gets its chart, with the series of those runs.
 */
export function chartsOfRuns(runs: readonly RunCurves[]): Chart[] {
  const bases = new Map<string, Set<string>>();
  for (const { history } of runs) {
    for (const row of history) {
      for (const key of Object.keys(row)) {
        if (!IGNORED.has(key)) {
          const base = key.startsWith('val_') ? key.slice(4) : key;
          const keys = bases.get(base) ?? new Set<string>();
          keys.add(key);
          bases.set(base, keys);
        }
      }
    }
  }
  const names = [...bases.keys()].sort(
    (a, b) => Number(b === 'loss') - Number(a === 'loss') || a.localeCompare(b)
  );
  return names.map(title => {
    const keys = [...(bases.get(title) ?? [])].sort();
    const series: Series[] = [];
    runs.forEach((run, index) => {
      for (const key of keys) {
        if (!run.history.some(row => key in row)) {
          continue;
        }
        series.push({
          key,
          validation: key.startsWith('val_'),
          run: index,
          label: run.label ? `${run.label} ${key}` : key,
          points: run.history.map((row, i): [number, number | null] => [
            epochNumber(row, i),
            typeof row[key] === 'number' && Number.isFinite(row[key]) ? (row[key] as number) : null
          ])
        });
      }
    });
    const values = series.flatMap(s =>
      s.points.map(p => p[1]).filter((v): v is number => v !== null)
    );
    const epochs = series.flatMap(s => s.points.map(p => p[0]));
    return {
      title,
      series,
      min: values.length ? Math.min(...values) : 0,
      max: values.length ? Math.max(...values) : 1,
      first: epochs.length ? Math.min(...epochs) : 1,
      last: epochs.length ? Math.max(...epochs) : 1
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

/** Whether a chart can use a log scale: every value above zero. */
export function canLog(chart: Chart): boolean {
  return chart.min > 0 && chart.max > 0;
}

/** Whether a metric's chart starts on a log scale: losses and errors do. */
export function logByDefault(chart: Chart): boolean {
  return canLog(chart) && /loss|error|mse|mae|crossentropy/.test(chart.title);
}

/** The y range drawn: a flat series gets some room around its value. */
function yRange(chart: Chart, log: boolean): [number, number] {
  let lo = log ? Math.log10(chart.min) : chart.min;
  let hi = log ? Math.log10(chart.max) : chart.max;
  if (hi - lo < 1e-12) {
    const pad = log ? 0.1 : Math.abs(lo) * 0.05 || 0.5;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

/** The maps from epoch and value to SVG coordinates inside `box`. */
export function scales(
  chart: Chart,
  box: Box,
  log = false
): { x: (epoch: number) => number; y: (value: number) => number; epochAt: (px: number) => number } {
  const x0 = chart.first;
  const spanX = Math.max(chart.last - x0, 1);
  const [lo, hi] = yRange(chart, log && canLog(chart));
  const useLog = log && canLog(chart);
  const w = box.width - box.left - box.right;
  const h = box.height - box.top - box.bottom;
  return {
    x: e => box.left + ((e - x0) / spanX) * w,
    y: v => box.top + h - (((useLog ? Math.log10(v) : v) - lo) / (hi - lo)) * h,
    epochAt: px => Math.round(x0 + ((px - box.left) / w) * spanX)
  };
}

/**
 * SVG path data for a series inside `box`; a missing value (NaN during
 * training) breaks the line. A single point becomes a short tick.
 */
export function linePath(series: Series, chart: Chart, box: Box, log = false): string {
  const { x, y } = scales(chart, box, log);
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

/**
 * About `count` round tick values covering [min, max] (1, 2 or 5 times a
 * power of ten apart); `integer` keeps them whole (the epoch axis).
 */
export function niceTicks(min: number, max: number, count = 4, integer = false): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    return [];
  }
  if (max - min < 1e-12) {
    return [min];
  }
  const raw = (max - min) / Math.max(count, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 5, 10].map(m => m * power).find(s => s >= raw) ?? 10 * power;
  if (integer) {
    step = Math.max(1, Math.round(step));
  }
  const out: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

/** Ticks of a log axis: powers of ten in range, or 1-2-5 steps when fewer than two. */
export function logTicks(min: number, max: number): number[] {
  const out: number[] = [];
  for (let p = Math.floor(Math.log10(min)); p <= Math.ceil(Math.log10(max)); p++) {
    for (const m of [1, 2, 5]) {
      const v = m * Math.pow(10, p);
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) {
        out.push(Number(v.toPrecision(12)));
      }
    }
  }
  const powers = out.filter(v => Number.isInteger(Math.log10(v)));
  if (powers.length >= 2) {
    return powers;
  }
  return out.length >= 2 ? out : [min, max];
}

/** The y ticks of a chart on its scale. */
export function yTicks(chart: Chart, log: boolean): number[] {
  return log && canLog(chart) ? logTicks(chart.min, chart.max) : niceTicks(chart.min, chart.max);
}

/**
 * The best point of a series by `direction` (the first epoch on a tie), or
 * null when it has no value or no direction.
 */
export function bestPoint(
  series: Series,
  direction: Direction | undefined
): [number, number] | null {
  if (!direction) {
    return null;
  }
  let best: [number, number] | null = null;
  for (const [e, v] of series.points) {
    if (v !== null && (best === null || (direction === 'min' ? v < best[1] : v > best[1]))) {
      best = [e, v];
    }
  }
  return best;
}

/**
 * The series whose best epoch a chart marks, one per run: the validation
 * series when the run has one (what a reader judges a run by), else training.
 */
export function markedSeries(chart: Chart): Series[] {
  const byRun = new Map<number, Series>();
  for (const s of chart.series) {
    const known = byRun.get(s.run);
    if (!known || (s.validation && !known.validation)) {
      byRun.set(s.run, s);
    }
  }
  return [...byRun.values()];
}

/** Each series' value at `epoch` (null where it has none): the hover readout. */
export function valuesAt(chart: Chart, epoch: number): Array<{ series: Series; value: number | null }> {
  return chart.series.map(series => {
    const point = series.points.find(p => p[0] === epoch);
    return { series, value: point ? point[1] : null };
  });
}
