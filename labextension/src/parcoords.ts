/**
 * The geometry of a study's parallel-coordinates view: one vertical axis per
 * search space and one for the objective, each trial a line across them.
 * A choice is a categorical axis (its values in the spec's order), a
 * `LOW..HIGH:log` range a log axis, any other range linear; the objective
 * axis puts the best value at the top. Pure: the React view draws it.
 */

import { formatMetric } from './model';
import type { Direction } from './model';
import { Trial, valueText } from './groups';

/** A search space as `GET /nbkeras/api/versions/<id>/spaces` sends it. */
export interface SpaceInfo {
  name: string;
  kind: 'choice' | 'int' | 'float' | string;
  choices: unknown[];
  low: number | null;
  high: number | null;
  step: number | null;
  log: boolean;
  text?: string;
}

export interface Axis {
  name: string;
  scale: 'category' | 'linear' | 'log';
  /** The categories in order (category axes only). */
  categories: string[];
  lo: number;
  hi: number;
  /** Top to bottom is best to worst on the objective axis. */
  flip: boolean;
  /** Labels at positions 0 (bottom) .. 1 (top). */
  ticks: Array<{ at: number; label: string }>;
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A numeric value's short label: 4 significant digits. */
function numberLabel(v: number): string {
  return Number.isInteger(v) && Math.abs(v) < 1e5 ? String(v) : formatMetric(v);
}

function numericAxis(name: string, values: number[], space: SpaceInfo | undefined): Axis {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (space && isNumber(space.low) && isNumber(space.high)) {
    lo = Math.min(lo, space.low);
    hi = Math.max(hi, space.high);
  }
  if (!values.length) {
    lo = isNumber(space?.low) ? (space?.low as number) : 0;
    hi = isNumber(space?.high) ? (space?.high as number) : 1;
  }
  const scale = space?.log && lo > 0 ? 'log' : 'linear';
  return {
    name,
    scale,
    categories: [],
    lo,
    hi,
    flip: false,
    ticks: lo === hi ? [{ at: 0.5, label: numberLabel(lo) }] : [
      { at: 0, label: numberLabel(lo) },
      { at: 1, label: numberLabel(hi) }
    ]
  };
}

/**
 * The axis of space `name` over these trials' values, shaped by the space's
 * definition when known (else: numbers linear, anything else categories).
 */
export function spaceAxis(name: string, trials: readonly Trial[], space?: SpaceInfo): Axis {
  const raw = trials.map(t => t.values[name]).filter(v => v !== undefined);
  const categorical = space ? space.kind === 'choice' : raw.some(v => !isNumber(v));
  if (!categorical) {
    return numericAxis(name, raw.filter(isNumber), space);
  }
  const categories: string[] = [];
  for (const v of [...(space?.choices ?? []), ...raw]) {
    const text = valueText(v);
    if (!categories.includes(text)) {
      categories.push(text);
    }
  }
  const n = categories.length;
  return {
    name,
    scale: 'category',
    categories,
    lo: 0,
    hi: Math.max(n - 1, 0),
    flip: false,
    ticks: categories.map((label, i) => ({ at: n > 1 ? i / (n - 1) : 0.5, label }))
  };
}

/** The objective's axis: the best value at the top. */
export function objectiveAxis(
  name: string,
  trials: readonly Trial[],
  direction: Direction | undefined
): Axis {
  const values = trials.map(t => t.value).filter(isNumber);
  const axis = numericAxis(name, values, undefined);
  axis.flip = direction === 'min';
  axis.ticks = axis.ticks.map(t => ({ ...t, at: axis.flip ? 1 - t.at : t.at }));
  return axis;
}

/** Where `value` sits on `axis`: 0 at the bottom, 1 at the top; null when it cannot. */
export function position(axis: Axis, value: unknown): number | null {
  if (value === undefined) {
    return null;
  }
  let p: number;
  if (axis.scale === 'category') {
    const i = axis.categories.indexOf(valueText(value));
    if (i < 0) {
      return null;
    }
    p = axis.categories.length > 1 ? i / (axis.categories.length - 1) : 0.5;
  } else {
    if (!isNumber(value)) {
      return null;
    }
    if (axis.lo === axis.hi) {
      p = 0.5;
    } else if (axis.scale === 'log') {
      if (value <= 0) {
        return null;
      }
      p = (Math.log10(value) - Math.log10(axis.lo)) / (Math.log10(axis.hi) - Math.log10(axis.lo));
    } else {
      p = (value - axis.lo) / (axis.hi - axis.lo);
    }
  }
  return axis.flip ? 1 - p : p;
}

/**
 * How good a value is among `values`: 1 for the best, 0 for the worst (0.5
 * when all are equal or the direction is unknown).
 */
export function goodness(
  value: number,
  values: readonly number[],
  direction: Direction | undefined
): number {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (hi === lo || direction === undefined) {
    return 0.5;
  }
  const t = (value - lo) / (hi - lo);
  return direction === 'min' ? 1 - t : t;
}

/**
 * A trial's line colour by how good its objective is: from a muted blue
 * (worst) to a green (best), at a lightness that reads on the light and the
 * dark theme alike. The best trial itself is drawn in the theme's red.
 */
export function goodnessColor(t: number): string {
  const hue = Math.round(225 - 100 * Math.min(1, Math.max(0, t)));
  return `hsl(${hue}, 60%, 52%)`;
}

/** The layout of the view in SVG units (the SVG scales to the pane's width). */
export interface Layout {
  width: number;
  height: number;
  top: number;
  bottom: number;
  /** x of each axis. */
  xs: number[];
}

export function layout(axes: number, width = 240, height = 170): Layout {
  const left = 22;
  const right = 22;
  const span = width - left - right;
  const xs =
    axes <= 1
      ? [width / 2]
      : Array.from({ length: axes }, (_, i) => left + (span * i) / (axes - 1));
  return { width, height, top: 34, bottom: height - 16, xs };
}

/**
 * `text` in about `room` SVG units of 9px monospace text (5.5 units a
 * character): whole when it fits, else a dotted name's last part
 * ('optimizer.learning_rate' -> 'learning_rate'), else cut with an
 * ellipsis. The view puts the whole text in a tooltip.
 */
export function fitText(text: string, room: number, charWidth = 5.5): string {
  const max = Math.max(2, Math.floor(room / charWidth));
  if (text.length <= max) {
    return text;
  }
  const last = text.slice(text.lastIndexOf('.') + 1);
  if (last && last !== text && last.length <= max) {
    return last;
  }
  return `${text.slice(0, max - 1)}…`;
}

/** The points of a trial's line across the axes (axes it has no value on are skipped). */
export function trialPoints(
  trial: Trial,
  axes: readonly Axis[],
  box: Layout,
  objective: number
): Array<[number, number]> {
  const points: Array<[number, number]> = [];
  axes.forEach((axis, i) => {
    const p = position(axis, i === objective ? trial.value : trial.values[axis.name]);
    if (p !== null) {
      points.push([box.xs[i], box.bottom - p * (box.bottom - box.top)]);
    }
  });
  return points;
}
