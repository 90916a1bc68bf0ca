/**
 * Studies and folds: the runs that one `%tune` study or one `%fit --cv`
 * cross-validation produced, gathered into one group of the list. A study
 * knows its trials (one run each, or K fold runs for `%tune --cv`), their
 * objective values and the best; a cross-validation knows the mean ± std of
 * a metric over its folds. Pure functions over the server's summaries (the run
 * types come from ./runs), unit-tested in plain node.
 */

import type { Direction, RunSummary } from './runs';

export type { RunGroupInfo } from './runs';

/** A group key: one per (model, study) and per (model, cv group). */
export function groupKey(run: RunSummary): string | null {
  const group = run.group;
  if (!group) {
    return null;
  }
  if (typeof group.study === 'string') {
    return `study\u0000${run.model}\u0000${group.study}`;
  }
  if (typeof group.cv_group === 'string') {
    return `cv\u0000${run.model}\u0000${group.cv_group}`;
  }
  return null;
}

/**
 * The value of `metric` for the weights the run holds: the epoch early
 * stopping restored, else the last epoch (as `%tune` and `%fit --cv` score
 * it); null when missing or not finite.
 */
export function heldValue(run: RunSummary, metric: string): number | null {
  const held = run.kept ?? run.group?.held;
  const value = held ? held[metric] : run.last[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Mean and sample standard deviation (n - 1; 0 for one value), as `%fit --cv`. */
export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

export function meanStd(values: readonly number[]): MeanStd | null {
  const n = values.length;
  if (n === 0) {
    return null;
  }
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/** The direction of `metric` as the server sent it with these runs. */
function directionOf(runs: readonly RunSummary[], metric: string): Direction | undefined {
  for (const run of runs) {
    const d = run.directions?.[metric];
    if (d === 'min' || d === 'max') {
      return d;
    }
  }
  return undefined;
}

/** A status as a trial shows it: the worst of its runs' (running wins). */
const STATUS_RANK = ['running', 'failed', 'interrupted', 'stopped', 'completed'];

/** One trial of a study: a run, or the K fold runs of a `%tune --cv` trial. */
export interface Trial {
  /** Optuna's trial number (null when not recorded). */
  number: number | null;
  runs: RunSummary[];
  values: Record<string, unknown>;
  /** The objective for the weights it holds (the mean over its folds). */
  value: number | null;
  /** A run status: completed, running, stopped (pruned or stopped), failed, interrupted. */
  status: string;
}

export interface StudyGroup {
  kind: 'study';
  key: string;
  model: string;
  /** The study's name. */
  name: string;
  runs: RunSummary[];
  running: number;
  objective: string | null;
  direction: Direction | undefined;
  /** Best first: completed trials by objective, then the others. */
  trials: Trial[];
  /** The best completed trial, or null. */
  best: Trial | null;
  /** The search spaces, in the order the trials recorded them. */
  spaces: string[];
}

export interface CvGroup {
  kind: 'cv';
  key: string;
  model: string;
  /** The cross-validation's group id. */
  name: string;
  /** Fold order. */
  runs: RunSummary[];
  running: number;
  /** The metric summarised over the folds. */
  metric: string | null;
  /** Mean ± std of `metric` over the completed folds. */
  stats: MeanStd | null;
  /** K, as `--cv K` asked (the runs recorded so far when unknown). */
  folds: number;
}

export type RunGroup = StudyGroup | CvGroup;

/**
 * Orders trials: completed ones with a value best first, then the others by
 * value, then by number.
 */
export function byObjective(direction: Direction | undefined): (a: Trial, b: Trial) => number {
  const sign = direction === 'min' ? 1 : -1;
  return (a, b) => {
    const doneA = a.status === 'completed' && a.value !== null;
    const doneB = b.status === 'completed' && b.value !== null;
    if (doneA !== doneB) {
      return doneA ? -1 : 1;
    }
    if (a.value !== null && b.value !== null && a.value !== b.value) {
      return sign * (a.value - b.value);
    }
    if ((a.value === null) !== (b.value === null)) {
      return a.value === null ? 1 : -1;
    }
    return (a.number ?? Infinity) - (b.number ?? Infinity);
  };
}

/** The trials of a study's runs, best first by `objective`. */
export function studyTrials(
  runs: readonly RunSummary[],
  objective: string | null,
  direction: Direction | undefined
): Trial[] {
  const byKey = new Map<string, RunSummary[]>();
  for (const run of runs) {
    const g = run.group ?? {};
    // a %tune --cv trial is its folds: same trial number, same cv group
    const key = `${g.trial ?? ''}\u0000${g.cv_group ?? `run ${run.id}`}`;
    const list = byKey.get(key);
    if (list) {
      list.push(run);
    } else {
      byKey.set(key, [run]);
    }
  }
  const trials: Trial[] = [];
  for (const members of byKey.values()) {
    members.sort((a, b) => (a.group?.fold ?? 0) - (b.group?.fold ?? 0) || a.id - b.id);
    const first = members[0].group ?? {};
    const values = objective === null
      ? []
      : members.map(r => heldValue(r, objective)).filter((v): v is number => v !== null);
    const allThere = values.length === members.length;
    const folds = first.cv_group !== undefined ? first.folds ?? members.length : 1;
    let status = members
      .map(r => r.status)
      .reduce((a, b) => (STATUS_RANK.indexOf(a) <= STATUS_RANK.indexOf(b) ? a : b));
    if (status === 'completed' && members.length < folds) {
      status = 'stopped'; // a cross-validated trial whose last folds never ran
    }
    trials.push({
      number: typeof first.trial === 'number' ? first.trial : null,
      runs: members,
      values: first.values ?? {},
      value: allThere && values.length ? meanStd(values)!.mean : null,
      status
    });
  }
  return trials.sort(byObjective(direction));
}

/**
 * The group of these runs (all of one key). `metric` is the list's key
 * metric: a study without a recorded objective is scored by it, and a
 * cross-validation summarises it (or, where its folds lack it, their
 * first validation metric).
 */
export function makeGroup(
  key: string,
  runs: readonly RunSummary[],
  metric: string | null
): RunGroup {
  const members = [...runs];
  const [kind, model, name] = key.split('\u0000');
  const running = members.filter(r => r.status === 'running').length;
  if (kind === 'study') {
    const newest = [...members].sort((a, b) => b.id - a.id);
    const recorded = newest.map(r => r.group?.objective).find(o => typeof o === 'string');
    const objective = recorded ?? metric;
    // `%tune --direction` where recorded, else the metric's own direction
    const given = recorded
      ? newest.map(r => r.group?.direction).find(d => d === 'min' || d === 'max')
      : undefined;
    const direction = objective === null ? undefined : given ?? directionOf(newest, objective);
    const trials = studyTrials(members, objective, direction);
    const best = trials.find(t => t.status === 'completed' && t.value !== null) ?? null;
    const spaces: string[] = [];
    for (const run of [...members].sort((a, b) => a.id - b.id)) {
      for (const space of Object.keys(run.group?.values ?? {})) {
        if (!spaces.includes(space)) {
          spaces.push(space);
        }
      }
    }
    return {
      kind: 'study',
      key,
      model,
      name,
      runs: trials.flatMap(t => t.runs),
      running,
      objective,
      direction,
      trials,
      best,
      spaces
    };
  }
  members.sort((a, b) => (a.group?.fold ?? 0) - (b.group?.fold ?? 0) || a.id - b.id);
  const has = (m: string): boolean => members.some(r => heldValue(r, m) !== null);
  let chosen: string | null = metric !== null && has(metric) ? metric : null;
  if (chosen === null) {
    const keys = new Set(members.flatMap(r => Object.keys(r.last)));
    chosen = [...keys].filter(k => k.startsWith('val_')).sort()[0] ?? [...keys].sort()[0] ?? null;
  }
  const values =
    chosen === null
      ? []
      : members
          .filter(r => r.status === 'completed')
          .map(r => heldValue(r, chosen as string))
          .filter((v): v is number => v !== null);
  const k = members.map(r => r.group?.folds).find(f => typeof f === 'number');
  return {
    kind: 'cv',
    key,
    model,
    name,
    runs: members,
    running,
    metric: chosen,
    stats: meanStd(values),
    folds: typeof k === 'number' ? k : members.length
  };
}

/** The group of key `key` among `runs` (null when none of its runs is left). */
export function findGroup(
  runs: Iterable<RunSummary>,
  key: string,
  metric: string | null
): RunGroup | null {
  const members = [...runs].filter(r => groupKey(r) === key);
  return members.length ? makeGroup(key, members, metric) : null;
}

/**
 * A cross-validation's name in its row: the model it validated (the row's
 * badge says cross-validation, its count the folds); never a clock time,
 * which says nothing of what was validated (the start is in the tooltip).
 */
export function cvLabel(group: CvGroup): string {
  const line = group.runs.map(r => r.group?.fit_line).find(l => typeof l === 'string');
  return line ?? group.model;
}

/** What a run is inside its group: 'trial 3', 'fold 2 of 3', 'trial 3 · fold 2'. */
export function memberLabel(run: RunSummary): string {
  const g = run.group;
  if (!g) {
    return '';
  }
  const parts: string[] = [];
  if (typeof g.study === 'string' && typeof g.trial === 'number') {
    parts.push(`trial ${g.trial}`);
  }
  if (typeof g.cv_group === 'string' && typeof g.fold === 'number') {
    parts.push(parts.length ? `fold ${g.fold}` : `fold ${g.fold}${g.folds ? `/${g.folds}` : ''}`);
  }
  return parts.join(' · ');
}

/** A space's value as text: '3x3' for a tuple, 'none' for null. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) {
    return value === null ? 'none' : '';
  }
  if (Array.isArray(value)) {
    return value.map(valueText).join('x');
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  }
  return String(value);
}

/** A column of the trials table: the trial number, a space, the objective or the state. */
export type TrialColumn =
  | { kind: 'trial' }
  | { kind: 'space'; name: string }
  | { kind: 'value' }
  | { kind: 'status' };

/**
 * The trials ordered by a column, ascending or not; missing values last
 * either way. The objective ordered "best first" is `byObjective`.
 */
export function sortTrials(
  trials: readonly Trial[],
  column: TrialColumn,
  ascending: boolean
): Trial[] {
  const pick = (t: Trial): unknown =>
    column.kind === 'trial'
      ? t.number
      : column.kind === 'value'
        ? t.value
        : column.kind === 'status'
          ? t.status
          : t.values[column.name];
  const sign = ascending ? 1 : -1;
  return [...trials].sort((a, b) => {
    const x = pick(a);
    const y = pick(b);
    const missingX = x === null || x === undefined;
    const missingY = y === null || y === undefined;
    if (missingX || missingY) {
      return missingX === missingY ? (a.number ?? 0) - (b.number ?? 0) : missingX ? 1 : -1;
    }
    const c =
      typeof x === 'number' && typeof y === 'number'
        ? x - y
        : valueText(x).localeCompare(valueText(y), undefined, { numeric: true });
    return sign * c || (a.number ?? 0) - (b.number ?? 0);
  });
}
