/**
 * The sidebar's data logic, free of JupyterLab and the DOM so it can be
 * unit-tested in plain node: merging `since` updates into the known runs,
 * grouping, filtering and sorting them into list rows, and the arithmetic of
 * the virtualized list. (Studies and folds: ./groups.)
 */

import { groupKey, makeGroup, RunGroup } from './groups';
import type { Direction, Metrics, RunSummary } from './runs';

export type { Direction, Metrics, RunGroupInfo, RunSummary } from './runs';

/** The metrics of the weights a run's model holds: its result. */
export function keptMetrics(run: RunSummary): Metrics {
  return run.kept ?? run.last;
}

/** The body of `GET /nbkeras/api/runs[?since=N]`. */
export interface RunsResponse {
  runs: RunSummary[];
  cursor: number;
  /** With `since`: the ids of the runs deleted after it. */
  deleted?: number[];
}

/** The body of `GET /nbkeras/api/runs/<id>`. */
export interface RunDetail extends RunSummary {
  options: Record<string, unknown>;
  history: Array<Record<string, number | null>>;
  evaluations: Array<{ id: number; metrics: Metrics; created: string | null }>;
  spec: string | null;
  error: string | null;
  /** The `%fit` line that produced the run (non-default flags only). */
  fit_line?: string;
}

/** What the panel knows: every run by id and the cursor of its last poll. */
export interface RunsState {
  readonly runs: ReadonlyMap<number, RunSummary>;
  readonly cursor: number | null;
}

export const EMPTY_STATE: RunsState = { runs: new Map(), cursor: null };

/**
 * The state after a server answer.
 *
 * A full answer (no `since`) replaces every run; a `since` answer replaces
 * only the runs it carries, keeping whichever copy of a run is newer (a
 * larger `seq`). Returns the very same object when nothing changed, so a
 * quiet poll re-renders nothing.
 */
export function applyUpdate(
  state: RunsState,
  update: RunsResponse,
  full: boolean
): RunsState {
  if (full) {
    return {
      runs: new Map(update.runs.map(run => [run.id, run])),
      cursor: update.cursor
    };
  }
  const changed = update.runs.filter(run => {
    const known = state.runs.get(run.id);
    return known === undefined || run.seq >= known.seq;
  });
  const gone = (update.deleted ?? []).filter(id => state.runs.has(id));
  const cursor = Math.max(state.cursor ?? 0, update.cursor);
  if (changed.length === 0 && gone.length === 0 && cursor === state.cursor) {
    return state;
  }
  const runs = new Map(state.runs);
  for (const id of gone) {
    runs.delete(id);
  }
  for (const run of changed) {
    runs.set(run.id, run);
  }
  return { runs, cursor };
}

/**
 * The direction of `metric` as the server sent it with these runs (the
 * first run that has it); undefined when none does.
 */
export function metricDirection(
  runs: Iterable<RunSummary>,
  metric: string
): Direction | undefined {
  for (const run of runs) {
    const direction = run.directions?.[metric];
    if (direction === 'min' || direction === 'max') {
      return direction;
    }
  }
  return undefined;
}

/** Every metric name of these runs: validation metrics first, then by name. */
export function metricKeys(runs: Iterable<RunSummary>): string[] {
  const keys = new Set<string>();
  for (const run of runs) {
    for (const key of Object.keys(run.best)) {
      keys.add(key);
    }
    for (const key of Object.keys(run.last)) {
      keys.add(key);
    }
  }
  const isVal = (k: string): number => (k.startsWith('val_') ? 0 : 1);
  return [...keys].sort((a, b) => isVal(a) - isVal(b) || a.localeCompare(b));
}

/** The metric a row shows when none is chosen: a validation score if any. */
export function defaultMetric(keys: readonly string[]): string | null {
  const val = keys.filter(k => k.startsWith('val_'));
  const pick =
    val.find(k => /acc/.test(k)) ??
    val.find(k => k === 'val_loss') ??
    val[0] ??
    keys.find(k => /acc/.test(k)) ??
    keys.find(k => k === 'loss') ??
    keys[0];
  return pick ?? null;
}

/** The list's order: newest first, or by the best value of a metric. */
export type SortBy = { kind: 'newest' } | { kind: 'metric'; metric: string };

export interface ViewOptions {
  /** Case-insensitive part of a model name; empty shows every model. */
  filter: string;
  sortBy: SortBy;
  /** Names of the models whose runs are folded away. */
  collapsed: ReadonlySet<string>;
  /** Keys of the study and cross-validation groups shown open (`groupKey`). */
  expanded?: ReadonlySet<string>;
  /** The list's key metric: what a cross-validation group summarises. */
  metric?: string | null;
}

/**
 * A row of the list: a model heading, a study or cross-validation group
 * (one row until opened), or a run (`member`: shown inside its open group).
 */
export type Row =
  | {
      kind: 'model';
      name: string;
      runs: number;
      running: number;
      collapsed: boolean;
    }
  | { kind: 'group'; group: RunGroup; expanded: boolean }
  | {
      kind: 'run';
      run: RunSummary;
      member?: boolean;
      /** The open group it is shown in (`member`): a study's trial row shows its objective. */
      group?: RunGroup;
    };

/**
 * Compares two runs by the best value of `metric`, best first: the smallest
 * first when `direction` is 'min', else the largest (an unknown direction
 * sorts as 'max'). Runs without it go last; ties keep the newest first.
 */
export function byMetric(
  metric: string,
  direction: Direction | undefined
): (a: RunSummary, b: RunSummary) => number {
  const sign = direction === 'min' ? 1 : -1;
  return (a, b) => {
    const x = a.best[metric];
    const y = b.best[metric];
    const hasX = typeof x === 'number';
    const hasY = typeof y === 'number';
    if (hasX && hasY && x !== y) {
      return sign * (x - y);
    }
    if (hasX !== hasY) {
      return hasX ? -1 : 1;
    }
    return b.id - a.id;
  };
}

const newestFirst = (a: RunSummary, b: RunSummary): number => b.id - a.id;

/** `order`, with starred (pinned) runs before the others. */
export function starredFirst(
  order: (a: RunSummary, b: RunSummary) => number
): (a: RunSummary, b: RunSummary) => number {
  return (a, b) => Number(!!b.starred) - Number(!!a.starred) || order(a, b);
}

/**
 * The rows to show: models whose name contains the filter, each followed by
 * its runs (unless collapsed), ordered as `sortBy` asks. Models are ordered
 * by their first run under the same order. The runs of one `%tune` study or
 * one `%fit --cv` are one group row, placed where its first run would be,
 * followed by its runs when open (a study's best trial first, folds in order).
 */
export function buildRows(
  runs: Iterable<RunSummary>,
  options: ViewOptions
): Row[] {
  const needle = options.filter.trim().toLowerCase();
  const groups = new Map<string, RunSummary[]>();
  for (const run of runs) {
    if (needle && !run.model.toLowerCase().includes(needle)) {
      continue;
    }
    const group = groups.get(run.model);
    if (group) {
      group.push(run);
    } else {
      groups.set(run.model, [run]);
    }
  }
  let order: (a: RunSummary, b: RunSummary) => number = newestFirst;
  if (options.sortBy.kind === 'metric') {
    const metric = options.sortBy.metric;
    const all = [...groups.values()].flat();
    order = byMetric(metric, metricDirection(all, metric));
  }
  order = starredFirst(order);
  const sorted = [...groups.entries()].map(([name, list]) => {
    list.sort(order);
    return { name, list };
  });
  sorted.sort((a, b) => order(a.list[0], b.list[0]));
  const rows: Row[] = [];
  const expanded = options.expanded ?? new Set<string>();
  for (const { name, list } of sorted) {
    const collapsed = options.collapsed.has(name);
    rows.push({
      kind: 'model',
      name,
      runs: list.length,
      running: list.filter(r => r.status === 'running').length,
      collapsed
    });
    if (collapsed) {
      continue;
    }
    // `list` is in order: a group takes the place of its first run
    const members = new Map<string, RunSummary[]>();
    for (const run of list) {
      const key = groupKey(run);
      if (key !== null) {
        const group = members.get(key);
        if (group) {
          group.push(run);
        } else {
          members.set(key, [run]);
        }
      }
    }
    const placed = new Set<string>();
    for (const run of list) {
      const key = groupKey(run);
      if (key === null) {
        rows.push({ kind: 'run', run });
      } else if (!placed.has(key)) {
        placed.add(key);
        const group = makeGroup(key, members.get(key) as RunSummary[], options.metric ?? null);
        const open = expanded.has(key);
        rows.push({ kind: 'group', group, expanded: open });
        if (open) {
          for (const member of group.runs) {
            rows.push({ kind: 'run', run: member, member: true, group });
          }
        }
      }
    }
  }
  return rows;
}

/** Pixel heights of the kinds of rows (the stylesheet matches them). */
export const ROW_HEIGHT = { model: 30, group: 44, run: 62 } as const;

/** offsets[i] is the top of row i; offsets[rows.length] the total height. */
export function rowOffsets(rows: readonly Row[]): number[] {
  const offsets = new Array<number>(rows.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < rows.length; i++) {
    offsets[i + 1] = offsets[i] + ROW_HEIGHT[rows[i].kind];
  }
  return offsets;
}

/**
 * The rows [start, end) that intersect the viewport, widened by `overscan`
 * rows on each side. A binary search: cheap for any number of rows.
 */
export function visibleRange(
  offsets: readonly number[],
  scrollTop: number,
  viewportHeight: number,
  overscan = 4
): [number, number] {
  const count = offsets.length - 1;
  if (count <= 0) {
    return [0, 0];
  }
  // The last row whose top is <= y.
  const rowAt = (y: number): number => {
    let lo = 0;
    let hi = count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid] <= y) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  };
  const first = rowAt(Math.max(0, scrollTop));
  const last = rowAt(Math.max(0, scrollTop + viewportHeight - 1));
  return [Math.max(0, first - overscan), Math.min(count, last + 1 + overscan)];
}

/**
 * A metric value in 4 significant digits, trailing zeros kept (1.000 beside
 * 0.8970, never 1 beside 0.897); scientific outside 0.001 to 100,000; a dash
 * when missing. The same rule as the kernel's `nbkeras/fmt.py`.
 */
export function formatMetric(value: number | null | undefined): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return '–';
  }
  const size = Math.abs(value);
  if (size === 0) {
    return '0.000';
  }
  if (size >= 1e5 || size < 1e-3) {
    // 1.234e-05, as Python writes it
    return value.toExponential(3).replace(/e([+-])(\d)$/, 'e$10$2');
  }
  if (size >= 1e4) {
    return value.toFixed(0);
  }
  return value.toPrecision(4);
}

/** Bytes as "3.2 GB", "640 MB", "12 KB" (decimal units, as the panel writes them). */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GB', 1e9],
    ['MB', 1e6],
    ['KB', 1e3]
  ] as const) {
    if (bytes >= size) {
      const v = bytes / size;
      return `${v < 100 ? v.toFixed(1) : v.toFixed(0)} ${unit}`;
    }
  }
  return `${bytes} B`;
}

/** Seconds as "42 s", "3 min 05 s" or "2 h 07 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
    return '–';
  }
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  }
  return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
}

/** How long a run took, or has been running at `nowMs`. */
export function runDuration(run: RunSummary, nowMs: number): number | null {
  if (run.status === 'running') {
    const started = Date.parse(run.started);
    return Number.isNaN(started) ? run.duration : (nowMs - started) / 1000;
  }
  return run.duration;
}

/** "3/10": epochs done of planned. */
export function epochsText(run: RunSummary): string {
  return run.epochs_planned
    ? `${run.epochs}/${run.epochs_planned}`
    : String(run.epochs);
}

/** The text of a notebook cell that rebuilds this spec under `name`. */
export function modelCell(name: string, spec: string): string {
  const body = spec.replace(/\s+$/, '');
  if (body.startsWith('%%model')) {
    return `${body}\n`;
  }
  return `%%model ${name}\n${body}\n`;
}

/**
 * `path` relative to the server's root folder when it lies inside it (the
 * kernel records absolute paths; JupyterLab opens relative ones).
 */
export function relativePath(path: string, serverRoot: string): string {
  const root = serverRoot.replace(/\/+$/, '');
  if (root && path.startsWith(`${root}/`)) {
    return path.slice(root.length + 1);
  }
  return path;
}

/**
 * The most common value of `pick` over these runs (ties: the newest run's),
 * or null when no run has one. Rows show a run's device or precision only
 * where it differs from this.
 */
export function commonValue(
  runs: Iterable<RunSummary>,
  pick: (run: RunSummary) => string | null | undefined
): string | null {
  const counts = new Map<string, number>();
  let best: string | null = null;
  let bestCount = 0;
  const sorted = [...runs].sort((a, b) => b.id - a.id);
  for (const run of sorted) {
    const value = pick(run);
    if (value) {
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
  }
  for (const run of sorted) {
    const value = pick(run);
    if (value && (counts.get(value) ?? 0) > bestCount) {
      best = value;
      bestCount = counts.get(value) ?? 0;
    }
  }
  return best;
}

/** A run's precision as shown: 'mixed precision' or 'float32'. */
export function precisionText(run: RunSummary, short = false): string {
  return run.precision === 'mixed' ? (short ? 'mixed' : 'mixed precision') : 'float32';
}

/**
 * What a row says about where a run trained: its device and precision,
 * each only where it differs from the usual one (`common`); '' when both match.
 */
export function placeText(
  run: RunSummary,
  common: { device: string | null; precision: string | null }
): string {
  const parts: string[] = [];
  if (run.device && run.device !== common.device) {
    parts.push(run.device);
  }
  const precision = run.precision ?? 'float32';
  const said = /precision/.test(run.device ?? '');
  if (!said && common.precision !== null && precision !== common.precision) {
    parts.push(precisionText(run, true));
  }
  return parts.join(' · ');
}

/**
 * The runs chosen for comparison after a click on `id`: a toggle of its
 * membership, keeping the order of choice (the first chosen run is the
 * reference of the differences).
 */
export function toggleCompare(chosen: readonly number[], id: number): number[] {
  return chosen.includes(id) ? chosen.filter(c => c !== id) : [...chosen, id];
}

/** The chosen runs that still exist (a deleted run leaves the comparison). */
export function keepExisting(
  chosen: readonly number[],
  runs: ReadonlyMap<number, RunSummary>
): number[] {
  const kept = chosen.filter(id => runs.has(id));
  return kept.length === chosen.length ? (chosen as number[]) : kept;
}

/** One row of the comparison table: a metric's results, last-epoch or best values. */
export interface CompareRow {
  metric: string;
  kind: 'result' | 'last epoch' | 'best';
  values: Array<number | null>;
  /** Indices of the best value(s) of the row, by the metric's direction. */
  best: number[];
}

/**
 * The comparison table of these runs (one column per run): for each metric,
 * a row of results (what each model holds), a row of last-epoch values where
 * early stopping kept an earlier epoch in some run, and a row of best values, the best of each row
 * marked by the metric's direction as the server sent it. The default
 * metric first, then validation metrics, then the rest.
 */
export function compareRows(runs: readonly RunSummary[]): CompareRow[] {
  const keys = metricKeys(runs);
  const first = defaultMetric(keys);
  keys.sort((a, b) => Number(b === first) - Number(a === first));
  const direction = (key: string): Direction | undefined =>
    metricDirection(runs, key);
  const rows: CompareRow[] = [];
  for (const metric of keys) {
    const kinds: Array<CompareRow['kind']> = runs.some(run => run.kept)
      ? ['result', 'last epoch', 'best']
      : ['result', 'best'];
    for (const kind of kinds) {
      const source = (run: RunSummary): Metrics =>
        kind === 'result' ? keptMetrics(run) : kind === 'best' ? run.best : run.last;
      const values = runs.map(run => {
        const v = source(run)[metric];
        return typeof v === 'number' && Number.isFinite(v) ? v : null;
      });
      rows.push({ metric, kind, values, best: bestIndices(values, direction(metric)) });
    }
  }
  return rows;
}

/**
 * Where the best of `values` stands: the smallest for 'min', the largest for
 * 'max'; none without a direction or with fewer than two values.
 */
export function bestIndices(
  values: ReadonlyArray<number | null>,
  direction: Direction | undefined
): number[] {
  const present = values.filter((v): v is number => v !== null);
  if (present.length < 2 || direction === undefined) {
    return [];
  }
  const target = direction === 'min' ? Math.min(...present) : Math.max(...present);
  return values.flatMap((v, i) => (v === target ? [i] : []));
}

/** One line of a diff: kept (' '), only in the first text ('-'), only in the second ('+'). */
export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

/**
 * A line diff of two texts (longest common subsequence), as a reader
 * expects: removed lines before the added lines that replace them.
 */
export function lineDiff(a: string, b: string): DiffLine[] {
  const x = a.replace(/\s+$/, '').split('\n');
  const y = b.replace(/\s+$/, '').split('\n');
  const n = x.length;
  const m = y.length;
  // lcs[i][j]: the LCS length of x[i:] and y[j:]
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push({ op: ' ', text: x[i] });
      i++;
      j++;
    } else if (j >= m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1])) {
      out.push({ op: '-', text: x[i] });
      i++;
    } else {
      out.push({ op: '+', text: y[j] });
      j++;
    }
  }
  return out;
}

/** The words of a `%fit` line: spaces split, single or double quotes group. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  let match: RegExpExecArray | null;
  while ((match = re.exec(line)) !== null) {
    out.push(match[1] ?? match[2] ?? match[3]);
  }
  return out;
}

/**
 * A `%fit` line's parts: the data expressions (`x`, `y`) and each flag with
 * its value ('on' for a switch). A word starting with '-' that is not a
 * number starts a flag.
 */
export function fitLineParts(line: string): Map<string, string> {
  const parts = new Map<string, string>();
  const list = words(line);
  let i = list[0] === '%fit' ? 2 : 1;
  const positional = ['x', 'y'];
  const isFlag = (w: string): boolean => /^-[^\d.]/.test(w);
  while (i < list.length && !isFlag(list[i]) && positional.length) {
    parts.set(positional.shift() as string, list[i]);
    i++;
  }
  while (i < list.length) {
    const flag = list[i++];
    const values: string[] = [];
    while (i < list.length && !isFlag(list[i])) {
      values.push(list[i++]);
    }
    parts.set(flag, values.length ? values.join(' ') : 'on');
  }
  return parts;
}

/** An option that differs between compared runs: its value per run ('' unset). */
export interface OptionDiff {
  option: string;
  values: string[];
}

/** The `%fit` options (and data) whose values differ between these lines. */
export function optionDiffs(lines: ReadonlyArray<string | null | undefined>): OptionDiff[] {
  const parsed = lines.map(line => fitLineParts(line ?? ''));
  const names: string[] = [];
  for (const parts of parsed) {
    for (const name of parts.keys()) {
      if (!names.includes(name)) {
        names.push(name);
      }
    }
  }
  return names
    .map(option => ({ option, values: parsed.map(p => p.get(option) ?? '') }))
    .filter(d => new Set(d.values).size > 1);
}

/** A CSV field, quoted when it holds a comma, quote or line break. */
function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * A run's history as CSV: a header `epoch,<metrics...>` and a row per
 * epoch, numbers at full precision (a file is for computing, not reading),
 * empty where a value is missing.
 */
export function historyCsv(history: ReadonlyArray<Record<string, number | null>>): string {
  const keys: string[] = [];
  for (const row of history) {
    for (const key of Object.keys(row)) {
      if (key !== 'epoch' && !keys.includes(key)) {
        keys.push(key);
      }
    }
  }
  const header = ['epoch', ...keys];
  const lines = [header.map(csvField).join(',')];
  history.forEach((row, i) => {
    const epoch = typeof row['epoch'] === 'number' ? row['epoch'] : i + 1;
    lines.push(
      [String(epoch), ...keys.map(k => (typeof row[k] === 'number' ? String(row[k]) : ''))].join(',')
    );
  });
  return lines.join('\n') + '\n';
}

/** A run's label in legends and column heads: "model #id". */
export function runLabel(run: { model: string; id: number }): string {
  return `${run.model} #${run.id}`;
}

/**
 * A `%fit` line cut where it may wrap: the magic with its data, then each
 * flag with its value, so a narrow pane never breaks "--val-split 0.2" apart.
 */
export function fitLineGroups(line: string): string[] {
  return line.split(/\s+(?=--?[^\d.\s-][^\s]*)/);
}

/** A run's state as a mark (the word on hover), in the run list and a study's trials. */
export const STATUS_MARK: Record<string, string> = {
  running: '●',
  completed: '✓',
  stopped: '■',
  failed: '✗',
  interrupted: '⚠'
};
