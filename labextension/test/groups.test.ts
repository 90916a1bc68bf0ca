/**
 * Unit tests of studies and folds in the list: grouping the runs of a
 * `%tune` study and of a `%fit --cv`, the best trial by the objective's
 * direction, mean ± std over the folds, sorting trials, what a trial's row
 * shows, and the axes of the parallel-coordinates view. Run with `npm test`.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  cvLabel,
  findGroup,
  groupKey,
  heldValue,
  meanStd,
  memberLabel,
  RunGroupInfo,
  sortTrials,
  StudyGroup,
  CvGroup
} from '../src/groups';
import {
  applyUpdate,
  buildRows,
  EMPTY_STATE,
  Row,
  rowOffsets,
  RunSummary,
  ViewOptions
} from '../src/model';
import { fitText, goodness, objectiveAxis, position, SpaceInfo, spaceAxis } from '../src/parcoords';
import { trialLine, trialLineTitle } from '../src/trialrow';
import { run as baseRun } from './fixtures';

function run(id: number, model: string, extra: Partial<RunSummary> = {}): RunSummary {
  return baseRun(id, model, { directions: { val_loss: 'min', val_accuracy: 'max' }, ...extra });
}

function trial(id: number, n: number, valLoss: number | null, extra: Partial<RunSummary> = {},
               group: Partial<RunGroupInfo> = {}): RunSummary {
  return run(id, 'tn', {
    last: valLoss === null ? {} : { val_loss: valLoss, val_accuracy: 1 - valLoss },
    best: valLoss === null ? {} : { val_loss: valLoss, val_accuracy: 1 - valLoss },
    group: {
      study: 'tn',
      trial: n,
      objective: 'val_loss',
      values: { width: n % 2 ? 64 : 16, 'optimizer.learning_rate': 10 ** -(n + 2) },
      restored_epoch: null,
      ...group
    },
    ...extra
  });
}

function fold(
  id: number,
  k: number,
  valAccuracy: number,
  extra: Partial<RunSummary> = {}
): RunSummary {
  return run(id, 'tn', {
    last: { val_accuracy: valAccuracy, val_loss: 1 - valAccuracy },
    group: { cv_group: 'cv-tn-1', fold: k, folds: 3, restored_epoch: null },
    ...extra
  });
}

const VIEW: ViewOptions = {
  filter: '',
  sortBy: { kind: 'newest' },
  collapsed: new Set(),
  metric: 'val_accuracy'
};

function summary(rows: Row[]): string[] {
  return rows.map(r =>
    r.kind === 'model'
      ? `[${r.name}]`
      : r.kind === 'group'
        ? `<${r.group.kind} ${r.group.runs.length}${r.expanded ? ' open' : ''}>`
        : `${r.member ? '  ' : ''}#${r.run.id}`
  );
}

const STUDY = [trial(1, 0, 0.5), trial(2, 1, 0.3), trial(4, 2, 0.4)];
const FOLDS = [fold(5, 1, 0.8), fold(6, 2, 0.9), fold(7, 3, 0.7)];

test('a study and a cross-validation are one row each, where their newest run would be', () => {
  const runs = [...STUDY, run(3, 'tn'), ...FOLDS, run(8, 'tn')];
  assert.deepEqual(summary(buildRows(runs, VIEW)), ['[tn]', '#8', '<cv 3>', '<study 3>', '#3']);
  const header = buildRows(runs, VIEW)[0];
  assert.ok(header.kind === 'model' && header.runs === 8);
  assert.equal(groupKey(run(3, 'tn')), null);
});

test('an open study lists its trials best first by the objective; folds in order', () => {
  const runs = [...STUDY, ...FOLDS];
  const keys = new Set(runs.map(r => groupKey(r) as string));
  const rows = buildRows(runs, { ...VIEW, expanded: keys });
  assert.deepEqual(summary(rows), [
    '[tn]', '<cv 3 open>', '  #5', '  #6', '  #7', '<study 3 open>', '  #2', '  #4', '  #1'
  ]);
  // the row heights add up with the group rows
  const offsets = rowOffsets(rows);
  assert.equal(offsets[rows.length], 30 + 2 * 44 + 6 * 62);
});

test("a study's best follows the objective's direction, among completed trials only", () => {
  const study = findGroup(STUDY, groupKey(STUDY[0]) as string, null) as StudyGroup;
  assert.equal(study.kind, 'study');
  assert.equal(study.objective, 'val_loss');
  assert.equal(study.best?.number, 1);
  assert.equal(study.best?.value, 0.3);
  // a score: the highest wins
  const maxed = STUDY.map(r => ({ ...r, group: { ...r.group, objective: 'val_accuracy' } }));
  const best = (findGroup(maxed, groupKey(maxed[0]) as string, null) as StudyGroup).best;
  assert.equal(best?.number, 1);
  assert.ok(Math.abs((best?.value as number) - 0.7) < 1e-12);
  // `%tune --direction` as recorded wins over the metric's own direction
  const given = STUDY.map(r => ({ ...r, group: { ...r.group, direction: 'max' as const } }));
  const reversed = findGroup(given, groupKey(given[0]) as string, null) as StudyGroup;
  assert.equal(reversed.direction, 'max');
  assert.equal(reversed.best?.number, 0);
  // a running or pruned (stopped) trial with a better value is not the best
  const live = [
    ...STUDY,
    trial(9, 3, 0.1, { status: 'running' }),
    trial(10, 4, 0.05, { status: 'stopped' })
  ];
  const g = findGroup(live, groupKey(live[0]) as string, null) as StudyGroup;
  assert.equal(g.best?.number, 1);
  assert.equal(g.running, 1);
  assert.deepEqual(g.trials.map(t => t.number), [1, 2, 0, 4, 3]);
});

test('a trial that early stopping restored is scored at the restored epoch', () => {
  const restored = trial(11, 5, 0.6, {}, { restored_epoch: 2, held: { val_loss: 0.2 } });
  assert.equal(heldValue(restored, 'val_loss'), 0.2);
  const g = findGroup([...STUDY, restored], groupKey(restored) as string, null) as StudyGroup;
  assert.equal(g.best?.number, 5);
});

test('without a recorded objective a study is scored by the key metric', () => {
  const old = STUDY.map(r => ({ ...r, group: { ...r.group, objective: null } }));
  const g = findGroup(old, groupKey(old[0]) as string, 'val_accuracy') as StudyGroup;
  assert.equal(g.objective, 'val_accuracy');
  assert.equal(g.direction, 'max');
  assert.equal(g.best?.number, 1);
});

test('a cross-validation shows mean ± std (n - 1) of the key metric over completed folds', () => {
  const g = findGroup(FOLDS, groupKey(FOLDS[0]) as string, 'val_accuracy') as CvGroup;
  assert.equal(g.kind, 'cv');
  assert.equal(g.metric, 'val_accuracy');
  assert.ok(Math.abs((g.stats?.mean as number) - 0.8) < 1e-12);
  assert.ok(Math.abs((g.stats?.std as number) - 0.1) < 1e-12);
  assert.equal(g.folds, 3);
  // a fold in flight does not count yet; a metric the folds lack falls back to theirs
  const live = [FOLDS[0], FOLDS[1], fold(7, 3, 0.1, { status: 'running' })];
  const h = findGroup(live, groupKey(live[0]) as string, 'accuracy') as CvGroup;
  assert.equal(h.metric, 'val_accuracy');
  assert.equal(h.stats?.n, 2);
  assert.equal(h.running, 1);
  assert.deepEqual(meanStd([2]), { mean: 2, std: 0, n: 1 });
  assert.equal(meanStd([]), null);
});

test('a cross-validation is named by its %fit line (else its model), not a clock time', () => {
  const g = findGroup(FOLDS, groupKey(FOLDS[0]) as string, 'val_accuracy') as CvGroup;
  assert.equal(cvLabel(g), 'tn');
  const line = '%fit tn x y --cv 3 -e 8';
  const named = FOLDS.map(r => ({ ...r, group: { ...r.group, fit_line: line } }));
  const h = findGroup(named, groupKey(named[0]) as string, 'val_accuracy') as CvGroup;
  assert.equal(cvLabel(h), line);
});

test('a cross-validated trial of a study is one trial: the mean over its folds', () => {
  const cv = (id: number, n: number, k: number, v: number): RunSummary =>
    trial(id, n, v, {}, { cv_group: `cv-tn-${n}`, fold: k, folds: 2 });
  const runs = [cv(1, 0, 1, 0.4), cv(2, 0, 2, 0.6), cv(3, 1, 1, 0.3), cv(4, 1, 2, 0.5)];
  const g = findGroup(runs, groupKey(runs[0]) as string, null) as StudyGroup;
  assert.equal(g.trials.length, 2);
  assert.equal(g.best?.number, 1);
  assert.ok(Math.abs((g.best?.value as number) - 0.4) < 1e-12);
  assert.equal(memberLabel(runs[1]), 'trial 0 · fold 2');
  assert.equal(memberLabel(FOLDS[0]), 'fold 1/3');
  // a trial whose second fold never ran is not complete
  const cut = findGroup(runs.slice(0, 3), groupKey(runs[0]) as string, null) as StudyGroup;
  assert.equal(cut.trials.find(t => t.number === 1)?.status, 'stopped');
});

test('a new trial joins its group at the next poll', () => {
  const state = applyUpdate(EMPTY_STATE, { runs: STUDY, cursor: 4 }, true);
  assert.deepEqual(summary(buildRows(state.runs.values(), VIEW)), ['[tn]', '<study 3>']);
  const update = { runs: [trial(12, 3, 0.2, { status: 'running' })], cursor: 12 };
  const next = applyUpdate(state, update, false);
  const rows = buildRows(next.runs.values(), VIEW);
  assert.deepEqual(summary(rows), ['[tn]', '<study 4>']);
  const group = rows[1];
  assert.ok(group.kind === 'group' && group.group.running === 1);
});

test('trials sort by any column, missing values last either way', () => {
  const g = findGroup(STUDY, groupKey(STUDY[0]) as string, null) as StudyGroup;
  const numbers = (column: Parameters<typeof sortTrials>[1], up: boolean): Array<number | null> =>
    sortTrials(g.trials, column, up).map(t => t.number);
  assert.deepEqual(numbers({ kind: 'trial' }, true), [0, 1, 2]);
  assert.deepEqual(numbers({ kind: 'value' }, false), [0, 2, 1]);
  assert.deepEqual(numbers({ kind: 'space', name: 'width' }, true), [0, 2, 1]);
  const withMissing = [...g.trials, { ...g.trials[0], number: 7, value: null }];
  assert.deepEqual(
    sortTrials(withMissing, { kind: 'value' }, true).map(t => t.number),
    [1, 2, 0, 7]
  );
  assert.deepEqual(
    sortTrials(withMissing, { kind: 'value' }, false).map(t => t.number),
    [0, 2, 1, 7]
  );
});

test('a choice is a category axis in the spec order, a :log range a log axis', () => {
  const g = findGroup(STUDY, groupKey(STUDY[0]) as string, null) as StudyGroup;
  const choice = { choices: [], low: null, high: null, step: null, log: false };
  const width: SpaceInfo = { ...choice, name: 'width', kind: 'choice', choices: [64, 16, 128] };
  const axis = spaceAxis('width', g.trials, width);
  assert.equal(axis.scale, 'category');
  assert.deepEqual(axis.categories, ['64', '16', '128']);
  assert.equal(position(axis, 16), 0.5);
  const lr: SpaceInfo = {
    ...choice,
    name: 'optimizer.learning_rate',
    kind: 'float',
    low: 1e-5,
    high: 1e-1,
    log: true
  };
  const log = spaceAxis(lr.name, g.trials, lr);
  assert.equal(log.scale, 'log');
  assert.ok(Math.abs((position(log, 1e-3) as number) - 0.5) < 1e-9);
  // without the space's definition: numbers are linear over the values seen
  const plain = spaceAxis(lr.name, g.trials);
  assert.equal(plain.scale, 'linear');
  assert.equal(position(plain, 1e-2), 1);
  // strings and tuples are categories
  const kernel = spaceAxis('k', [
    { ...g.trials[0], values: { k: [3, 3] } },
    { ...g.trials[1], values: { k: 'same' } }
  ]);
  assert.deepEqual(kernel.categories, ['3x3', 'same']);
});

test('the objective axis puts the best at the top; colours grade by goodness', () => {
  const g = findGroup(STUDY, groupKey(STUDY[0]) as string, null) as StudyGroup;
  const axis = objectiveAxis('val_loss', g.trials, 'min');
  assert.equal(position(axis, 0.3), 1);
  assert.equal(position(axis, 0.5), 0);
  assert.equal(goodness(0.3, [0.3, 0.5], 'min'), 1);
  assert.equal(goodness(0.3, [0.3, 0.5], 'max'), 0);
  assert.equal(fitText('optimizer.learning_rate', 40), 'optimi…');
  assert.equal(fitText('width', 40), 'width');
  // a dotted name too long for its room keeps its last part, whole
  assert.equal(fitText('optimizer.learning_rate', 80), 'learning_rate');
});

/** The open study's trial rows: [run id, what its metric line shows]. */
function trialRows(runs: RunSummary[], metric: string | null = 'val_accuracy'): string[] {
  const keys = new Set(runs.map(r => groupKey(r)).filter((k): k is string => k !== null));
  return buildRows(runs, { ...VIEW, metric, expanded: keys }).flatMap(r => {
    if (r.kind !== 'run') {
      return [];
    }
    const line = trialLine(r.run, r.group);
    return [line ? `#${r.run.id} ${line.objective} ${line.value}${line.best ? ' best' : ''}`
                 : `#${r.run.id}`];
  });
}

test("a trial's row shows the study's objective, not the list's key metric, best first", () => {
  // the list's key metric is val_accuracy; the study optimises val_loss
  assert.deepEqual(trialRows(STUDY), ['#2 val_loss 0.3 best', '#4 val_loss 0.4', '#1 val_loss 0.5']);
  const g = findGroup(STUDY, groupKey(STUDY[0]) as string, 'val_accuracy') as StudyGroup;
  const line = trialLine(STUDY[1], g);
  assert.equal(line?.direction, 'min');
  assert.equal(trialLineTitle(line!), 'val_loss, lower is better: 0.3000 · the best trial');
  assert.equal(trialLineTitle(trialLine(STUDY[0], g)!), 'val_loss, lower is better: 0.5000');
  // a score the study maximises: the highest first, the best tagged
  const maxed = STUDY.map(r => ({
    ...r, group: { ...r.group, objective: 'val_accuracy', direction: 'max' as const }
  }));
  assert.deepEqual(trialRows(maxed, 'val_loss'), [
    '#2 val_accuracy 0.7 best', '#4 val_accuracy 0.6', '#1 val_accuracy 0.5'
  ]);
});

test('a trial row shows the value of the weights the run keeps; live and pruned ones untagged', () => {
  const restored = trial(11, 5, 0.6, {}, { restored_epoch: 2, held: { val_loss: 0.25 } });
  const runs = [
    ...STUDY,
    restored,
    trial(9, 3, 0.1, { status: 'running' }),
    trial(10, 4, 0.05, { status: 'stopped' }),
    trial(12, 6, null, { status: 'failed' })
  ];
  // the restored epoch's 0.25, not the last epoch's 0.6, makes trial 5 the best
  assert.deepEqual(trialRows(runs), [
    '#11 val_loss 0.25 best', '#2 val_loss 0.3', '#4 val_loss 0.4', '#1 val_loss 0.5',
    '#10 val_loss 0.05', '#9 val_loss 0.1', '#12 val_loss null'
  ]);
  const g = findGroup(runs, groupKey(runs[0]) as string, null) as StudyGroup;
  assert.equal(
    trialLineTitle(trialLine(restored, g)!),
    'val_loss, lower is better: 0.2500 at epoch 2 (restored by early stopping) · the best trial'
  );
  assert.equal(trialLineTitle(trialLine(runs[4], g)!), 'val_loss, lower is better: 0.1000 so far');
  assert.equal(trialLineTitle(trialLine(runs[6], g)!), 'val_loss, lower is better: –');
});

test("a fold of a cross-validated trial shows its own value and its trial's mean", () => {
  const cv = (id: number, n: number, k: number, v: number): RunSummary =>
    trial(id, n, v, {}, { cv_group: `cv-tn-${n}`, fold: k, folds: 2 });
  const runs = [cv(1, 0, 1, 0.4), cv(2, 0, 2, 0.6), cv(3, 1, 1, 0.3), cv(4, 1, 2, 0.5)];
  assert.deepEqual(trialRows(runs), [
    '#3 val_loss 0.3 best', '#4 val_loss 0.5 best', '#1 val_loss 0.4', '#2 val_loss 0.6'
  ]);
  const g = findGroup(runs, groupKey(runs[0]) as string, null) as StudyGroup;
  assert.equal(
    trialLineTitle(trialLine(runs[3], g)!),
    'val_loss, lower is better: 0.5000 · trial mean over 2 folds 0.4000 · the best trial'
  );
});

test('runs outside studies, folds of a cross-validation and objective-less studies keep the key metric', () => {
  assert.deepEqual(trialRows([...FOLDS, run(3, 'tn')]), ['#5', '#6', '#7', '#3']);
  const cvGroup = findGroup(FOLDS, groupKey(FOLDS[0]) as string, 'val_accuracy');
  assert.equal(trialLine(FOLDS[0], cvGroup), null);
  assert.equal(trialLine(run(3, 'tn'), undefined), null);
  // no objective recorded and no key metric: nothing to show but the usual line
  const old = STUDY.map(r => ({ ...r, group: { ...r.group, objective: null } }));
  assert.deepEqual(trialRows(old, null), ['#1', '#2', '#4']);
  // no objective recorded: the study is scored by the key metric, and the row says so
  assert.deepEqual(trialRows(old, 'val_accuracy').map(t => t.split(' ').slice(0, 2).join(' ')), [
    '#2 val_accuracy', '#4 val_accuracy', '#1 val_accuracy'
  ]);
});
