/**
 * Test data shared by the unit tests: a run summary as the server sends it,
 * with only what a test sets differing from a plain completed 3-epoch run.
 */

import { RunSummary } from '../src/model';

export function run(id: number, model: string, extra: Partial<RunSummary> = {}): RunSummary {
  return {
    id,
    model,
    version_id: 1,
    status: 'completed',
    started: '2026-01-01T00:00:00+00:00',
    ended: '2026-01-01T00:01:00+00:00',
    duration: 60,
    device: 'CPU',
    backend: 'tensorflow',
    notebook: 'a.ipynb',
    epochs: 3,
    epochs_planned: 3,
    last: {},
    best: {},
    best_epoch: {},
    directions: {},
    seq: id,
    ...extra
  };
}
