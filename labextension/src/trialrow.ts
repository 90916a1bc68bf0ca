/**
 * What a `%tune` trial's run row shows once its study is open: the study's
 * objective (the metric the search optimises, with its direction) for the
 * weights the run keeps, and whether it is the best trial, rather than the
 * list's key metric, which a reader of a study does not rank trials by.
 * Pure functions, unit-tested in plain node.
 */

import { heldValue, RunGroup } from './groups';
import { Direction, formatMetric, RunSummary } from './model';

/** A trial row's metric line. */
export interface TrialLine {
  /** The study's objective. */
  objective: string;
  /** Which way it improves, when known. */
  direction: Direction | undefined;
  /** The run's objective for the weights it keeps: the restored epoch's, else the last. */
  value: number | null;
  /** Its trial's value: for a `%tune --cv` trial the mean over its folds, else `value`. */
  trialValue: number | null;
  /** How many runs its trial has: K for a `%tune --cv` trial, else 1. */
  runs: number;
  /** The run belongs to the study's best trial. */
  best: boolean;
  /** The epoch early stopping restored, else null. */
  restoredEpoch: number | null;
  /** The run is still training: its value is the last epoch's so far. */
  live: boolean;
}

/** The direction as an arrow beside the objective's name. */
export const DIRECTION_ARROW = { min: '↓', max: '↑' } as const;

const DIRECTION_WORDS = { min: 'lower is better', max: 'higher is better' } as const;

/**
 * The line of `run` shown inside its open `group`, or null where the row
 * keeps the list's key metric: a run outside a study, a cross-validation's
 * fold, or a study with no objective to show.
 *
 * Example:
 *
 * ```ts
 * trialLine(run, study);
 * // {objective: 'val_loss', direction: 'min', value: 0.3833, best: true, ...}
 * ```
 */
export function trialLine(
  run: RunSummary,
  group: RunGroup | null | undefined
): TrialLine | null {
  if (!group || group.kind !== 'study' || group.objective === null) {
    return null;
  }
  const trial = group.trials.find(t => t.runs.some(r => r.id === run.id));
  if (!trial) {
    return null;
  }
  const restored = run.group?.restored_epoch;
  return {
    objective: group.objective,
    direction: group.direction,
    value: heldValue(run, group.objective),
    trialValue: trial.value,
    runs: trial.runs.length,
    best: group.best !== null && group.best.runs.some(r => r.id === run.id),
    restoredEpoch: run.group?.held && typeof restored === 'number' ? restored : null,
    live: run.status === 'running'
  };
}

/**
 * The line in words, for its tooltip: 'val_loss, lower is better: 0.3833 ·
 * the best trial'; a fold of a `%tune --cv` trial adds its trial's mean.
 */
export function trialLineTitle(line: TrialLine): string {
  const how = line.direction ? `, ${DIRECTION_WORDS[line.direction]}` : '';
  let value = formatMetric(line.value);
  if (line.value !== null && line.restoredEpoch !== null) {
    value += ` at epoch ${line.restoredEpoch} (restored by early stopping)`;
  } else if (line.value !== null && line.live) {
    value += ' so far';
  }
  const parts = [`${line.objective}${how}: ${value}`];
  if (line.runs > 1) {
    parts.push(`trial mean over ${line.runs} folds ${formatMetric(line.trialValue)}`);
  }
  if (line.best) {
    parts.push('the best trial');
  }
  return parts.join(' · ');
}
