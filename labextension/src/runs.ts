/**
 * The shapes of what the server sends about runs (`GET /nbkeras/api/runs`):
 * one run's summary and the group (a `%tune` study or a `%fit --cv`) it
 * belongs to. Types only, imported by ./model and ./groups alike, so those
 * two never import each other.
 */

/** Metric name -> value; `null` where training produced NaN or inf. */
export type Metrics = Record<string, number | null>;

/** Which way a metric improves: 'min' when smaller values are better. */
export type Direction = 'min' | 'max';

/** One run as `GET /nbkeras/api/runs` returns it. */
export interface RunSummary {
  id: number;
  model: string;
  version_id: number | null;
  status: string;
  started: string;
  ended: string | null;
  duration: number | null;
  device: string | null;
  backend: string | null;
  notebook: string | null;
  epochs: number;
  epochs_planned: number | null;
  last: Metrics;
  best: Metrics;
  best_epoch: Record<string, number>;
  /**
   * The direction of every score in `last` and `best`, as training knew it
   * (the compiled Keras metrics) or else as nbkeras' metric vocabulary
   * names it. The server decides; the sidebar keeps no list of its own.
   */
  directions: Record<string, Direction>;
  seq: number;
  /** Starred (pinned) runs list first. */
  starred?: boolean;
  /** 'mixed' for a run trained with --mixed-precision, else 'float32'. */
  precision?: string;
  /** A `%tune` trial's study or a `%fit --cv` fold's group; absent otherwise. */
  group?: RunGroupInfo;
  /**
   * The metrics of the epoch whose weights the run's model holds, where
   * early stopping restored one that is not the last; absent otherwise
   * (`last` is then what the model holds).
   */
  kept?: Metrics;
  /** The epoch whose weights the model holds, when `kept` is present. */
  kept_epoch?: number | null;
}

/** What a study's trial or a fold run records of its group (`run.group`). */
export interface RunGroupInfo {
  /** The `%tune` study (`--study`, else the model's name). */
  study?: string;
  trial?: number | null;
  /** The metric the study optimises; null for trials recorded before it was kept. */
  objective?: string | null;
  /** Which way it improves (`%tune --direction`, else the metric's own). */
  direction?: Direction | null;
  /** The trial's value of each search space. */
  values?: Record<string, unknown>;
  /** The `%fit --cv` group id. */
  cv_group?: string;
  /** 1-based fold number, of `folds` (K). */
  fold?: number | null;
  folds?: number | null;
  /** A fold's `%fit ... --cv K` line (the cross-validation's name in the list). */
  fit_line?: string;
  /** The epoch whose weights early stopping restored, or null. */
  restored_epoch?: number | null;
  /** That epoch's metrics (present only then: else `last` is what the run holds). */
  held?: Record<string, number | null>;
}
