/**
 * Unit tests of the panel's model: merging `since` updates, grouping,
 * filtering and sorting rows, the virtualized list's arithmetic, formatting
 * and the curve paths. Run with `npm test` (tsc, then node's test runner).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  applyUpdate,
  bestIndices,
  fitLineGroups,
  buildRows,
  commonValue,
  compareRows,
  keptMetrics,
  fitLineParts,
  historyCsv,
  keepExisting,
  lineDiff,
  optionDiffs,
  placeText,
  toggleCompare,
  defaultMetric,
  EMPTY_STATE,
  epochsText,
  formatDuration,
  formatBytes,
  formatMetric,
  metricDirection,
  metricKeys,
  modelCell,
  relativePath,
  Row,
  rowOffsets,
  ViewOptions,
  visibleRange
} from '../src/model';
import {
  bestPoint,
  chartsOf,
  chartsOfRuns,
  linePath,
  logByDefault,
  logTicks,
  markedSeries,
  niceTicks,
  valuesAt
} from '../src/curves';
import { run } from './fixtures';


const NEWEST: ViewOptions = { filter: '', sortBy: { kind: 'newest' }, collapsed: new Set() };

function summary(rows: Row[]): string[] {
  return rows.map(r => (r.kind === 'model' ? `[${r.name}]` : r.kind === 'run' ? `#${r.run.id}` : '<group>'));
}

test('a full answer replaces every run and sets the cursor', () => {
  const state = applyUpdate(EMPTY_STATE, { runs: [run(1, 'a'), run(2, 'b')], cursor: 7 }, true);
  assert.deepEqual([...state.runs.keys()].sort(), [1, 2]);
  assert.equal(state.cursor, 7);
  const again = applyUpdate(state, { runs: [run(2, 'b')], cursor: 9 }, true);
  assert.deepEqual([...again.runs.keys()], [2]);
});

test('a since update merges changed runs and keeps the others', () => {
  const state = applyUpdate(
    EMPTY_STATE,
    { runs: [run(1, 'a'), run(2, 'a', { status: 'running', epochs: 1, seq: 5 })], cursor: 5 },
    true
  );
  const next = applyUpdate(
    state,
    { runs: [run(2, 'a', { status: 'running', epochs: 2, seq: 6 }), run(3, 'b', { seq: 7 })], cursor: 7 },
    false
  );
  assert.equal(next.cursor, 7);
  assert.equal(next.runs.get(2)?.epochs, 2);
  assert.equal(next.runs.get(1), state.runs.get(1));
  assert.ok(next.runs.has(3));
  // The earlier state is untouched (React compares by identity).
  assert.equal(state.runs.get(2)?.epochs, 1);
  assert.equal(state.runs.has(3), false);
});

test('a since update never replaces a run by an older copy of it', () => {
  const state = applyUpdate(EMPTY_STATE, { runs: [run(1, 'a', { epochs: 4, seq: 9 })], cursor: 9 }, true);
  const next = applyUpdate(state, { runs: [run(1, 'a', { epochs: 3, seq: 8 })], cursor: 9 }, false);
  assert.equal(next.runs.get(1)?.epochs, 4);
});

test('a quiet poll returns the very same state', () => {
  const state = applyUpdate(EMPTY_STATE, { runs: [run(1, 'a')], cursor: 3 }, true);
  assert.equal(applyUpdate(state, { runs: [], cursor: 3 }, false), state);
  const moved = applyUpdate(state, { runs: [], cursor: 4 }, false);
  assert.notEqual(moved, state);
  assert.equal(moved.cursor, 4);
  assert.equal(moved.runs.get(1), state.runs.get(1));
});

test('rows group runs under their model, newest model and run first', () => {
  const rows = buildRows([run(1, 'a'), run(2, 'b'), run(3, 'a'), run(4, 'c')], NEWEST);
  assert.deepEqual(summary(rows), ['[c]', '#4', '[a]', '#3', '#1', '[b]', '#2']);
  const header = rows[2];
  assert.ok(header.kind === 'model' && header.runs === 2 && header.running === 0);
});

test('the filter keeps models whose name contains it, in any case', () => {
  const runs = [run(1, 'MNIST_cnn'), run(2, 'digits'), run(3, 'mnist_mlp')];
  assert.deepEqual(summary(buildRows(runs, { ...NEWEST, filter: ' mnist ' })), [
    '[mnist_mlp]',
    '#3',
    '[MNIST_cnn]',
    '#1'
  ]);
  assert.deepEqual(buildRows(runs, { ...NEWEST, filter: 'nothing' }), []);
});

test('sorting by a score puts the highest first and runs without it last', () => {
  const runs = [
    run(1, 'a', { best: { val_accuracy: 0.8 } }),
    run(2, 'a', { best: { val_accuracy: 0.9 } }),
    run(3, 'a', { best: {} }),
    run(4, 'b', { best: { val_accuracy: 0.95 } })
  ];
  const rows = buildRows(runs, { ...NEWEST, sortBy: { kind: 'metric', metric: 'val_accuracy' } });
  assert.deepEqual(summary(rows), ['[b]', '#4', '[a]', '#2', '#1', '#3']);
});

test('sorting by a loss puts the lowest first, as the server says', () => {
  const directions = { val_loss: 'min' as const };
  const runs = [
    run(1, 'a', { best: { val_loss: 0.3 }, directions }),
    run(2, 'a', { best: { val_loss: 0.1 }, directions }),
    run(3, 'a', { best: { val_loss: 0.2 }, directions })
  ];
  const rows = buildRows(runs, { ...NEWEST, sortBy: { kind: 'metric', metric: 'val_loss' } });
  assert.deepEqual(summary(rows), ['[a]', '#2', '#3', '#1']);
});

test('the direction comes from the runs, never from the name', () => {
  // a custom metric whose compiled Keras object says lower is better
  const runs = [
    run(1, 'a', { best: { val_wobble: 0.3 } }),
    run(2, 'b', { best: { val_wobble: 0.1 }, directions: { val_wobble: 'min' } }),
    run(3, 'a', { best: { val_wobble: 0.2 }, directions: { val_wobble: 'min' } })
  ];
  assert.equal(metricDirection(runs, 'val_wobble'), 'min');
  const rows = buildRows(runs, { ...NEWEST, sortBy: { kind: 'metric', metric: 'val_wobble' } });
  assert.deepEqual(summary(rows), ['[b]', '#2', '[a]', '#3', '#1']);
  // unknown: sorted as a score, the highest first, whatever its name
  const unknown = [
    run(1, 'a', { best: { val_loss: 0.1 } }),
    run(2, 'a', { best: { val_loss: 0.3 } })
  ];
  assert.equal(metricDirection(unknown, 'val_loss'), undefined);
  const rows2 = buildRows(unknown, { ...NEWEST, sortBy: { kind: 'metric', metric: 'val_loss' } });
  assert.deepEqual(summary(rows2), ['[a]', '#2', '#1']);
});

test('a collapsed model shows its heading only, with its live count', () => {
  const runs = [run(1, 'a', { status: 'running' }), run(2, 'a'), run(3, 'b')];
  const rows = buildRows(runs, { ...NEWEST, collapsed: new Set(['a']) });
  assert.deepEqual(summary(rows), ['[b]', '#3', '[a]']);
  const a = rows[2];
  assert.ok(a.kind === 'model' && a.collapsed && a.runs === 2 && a.running === 1);
});

test('names are kept as given, markup included', () => {
  const name = '<img src=x onerror=alert(1)>';
  const rows = buildRows([run(1, name)], NEWEST);
  assert.ok(rows[0].kind === 'model' && rows[0].name === name);
});

test('metric keys list validation metrics first; the default prefers a validation score', () => {
  const keys = metricKeys([
    run(1, 'a', { last: { loss: 1, accuracy: 0.5 }, best: { val_loss: 1, val_accuracy: 0.6 } })
  ]);
  assert.deepEqual(keys, ['val_accuracy', 'val_loss', 'accuracy', 'loss']);
  assert.equal(defaultMetric(keys), 'val_accuracy');
  assert.equal(defaultMetric(['loss', 'val_loss', 'val_mae']), 'val_loss');
  assert.equal(defaultMetric(['loss', 'mae']), 'loss');
  assert.equal(defaultMetric([]), null);
});

test('the visible range covers the viewport plus overscan, for any number of rows', () => {
  const rows = buildRows(
    Array.from({ length: 10000 }, (_, i) => run(i + 1, `m${i % 100}`)),
    NEWEST
  );
  assert.equal(rows.length, 10100);
  const offsets = rowOffsets(rows);
  assert.equal(offsets.length, rows.length + 1);
  assert.equal(offsets[1], 30);
  assert.equal(offsets[2], 92);
  const [start, end] = visibleRange(offsets, 0, 400, 2);
  assert.equal(start, 0);
  assert.ok(end - start < 15, `renders ${end - start} rows`);
  const middle = offsets[5000];
  const [s, e] = visibleRange(offsets, middle, 400, 2);
  assert.equal(s, 4998);
  assert.ok(offsets[e] >= middle + 400 && e - s < 15);
  const total = offsets[rows.length];
  const [ls, le] = visibleRange(offsets, total - 400, 400, 2);
  assert.equal(le, rows.length);
  assert.ok(ls > rows.length - 15);
  assert.deepEqual(visibleRange([0], 0, 400), [0, 0]);
});

test('values are formatted short and readable', () => {
  assert.equal(formatMetric(0.912345), '0.9123');
  assert.equal(formatMetric(12.5), '12.50');
  assert.equal(formatMetric(1), '1.000');
  assert.equal(formatMetric(0.897), '0.8970');
  assert.equal(formatMetric(12345.6), '12346');
  assert.equal(formatMetric(0.00001234), '1.234e-05');
  assert.equal(formatMetric(null), '–');
  assert.equal(formatMetric(undefined), '–');
  assert.equal(formatDuration(42.4), '42 s');
  assert.equal(formatDuration(185), '3 min 05 s');
  assert.equal(formatDuration(7620), '2 h 07 min');
  assert.equal(formatDuration(null), '–');
  assert.equal(epochsText(run(1, 'a', { epochs: 2, epochs_planned: 10 })), '2/10');
  assert.equal(epochsText(run(1, 'a', { epochs: 2, epochs_planned: null })), '2');
});

test('the copied cell starts with %%model NAME and ends with the spec', () => {
  assert.equal(modelCell('digits', 'input 64\ndense 10 softmax\n\n'), '%%model digits\ninput 64\ndense 10 softmax\n');
  assert.equal(modelCell('d', '%%model d --input 8\ndense 1\n'), '%%model d --input 8\ndense 1\n');
});

test('curves pair a metric with its validation twin, loss first, gaps for NaN', () => {
  const history = [
    { epoch: 1, loss: 1.0, val_loss: 1.2, accuracy: 0.5 },
    { epoch: 2, loss: null, val_loss: 0.9, accuracy: 0.7 },
    { epoch: 3, loss: 0.5, val_loss: 0.8, accuracy: 0.9 }
  ];
  const charts = chartsOf(history);
  assert.deepEqual(charts.map(c => c.title), ['loss', 'accuracy']);
  const loss = charts[0];
  assert.deepEqual(loss.series.map(s => [s.key, s.validation]), [
    ['loss', false],
    ['val_loss', true]
  ]);
  assert.equal(loss.min, 0.5);
  assert.equal(loss.max, 1.2);
  assert.deepEqual([loss.first, loss.last], [1, 3]);
  const box = { width: 100, height: 50, left: 0, right: 0, top: 0, bottom: 0 };
  // loss: a point, a gap, a point; y grows downwards.
  assert.equal(linePath(loss.series[0], loss, box), 'M0.0 14.3 M100.0 50.0');
  assert.equal(linePath(loss.series[1], loss, box), 'M0.0 0.0 L50.0 21.4 L100.0 28.6');
  assert.deepEqual(chartsOf([]), []);
  // A resumed run starts later: its axis starts at its first epoch.
  const resumed = chartsOf([{ epoch: 6, loss: 1 }, { epoch: 7, loss: 0.5 }])[0];
  assert.equal(linePath(resumed.series[0], resumed, box), 'M0.0 0.0 L100.0 50.0');
});

test('notebook paths are shown relative to the server root when inside it', () => {
  assert.equal(relativePath('/home/me/work/a/b.ipynb', '/home/me/work'), 'a/b.ipynb');
  assert.equal(relativePath('/home/me/work/a/b.ipynb', '/home/me/work/'), 'a/b.ipynb');
  assert.equal(relativePath('/home/me/workshop/b.ipynb', '/home/me/work'), '/home/me/workshop/b.ipynb');
  assert.equal(relativePath('a/b.ipynb', ''), 'a/b.ipynb');
});

// -- deletions, stars, compare -------------------------------------------------

test('a poll drops the runs deleted since its cursor', () => {
  const state = applyUpdate(EMPTY_STATE, { runs: [run(1, 'a'), run(2, 'a')], cursor: 5 }, true);
  const next = applyUpdate(state, { runs: [], cursor: 6, deleted: [2, 99] }, false);
  assert.deepEqual([...next.runs.keys()], [1]);
  assert.equal(next.cursor, 6);
  // an unknown deleted id alone changes nothing but the cursor
  const same = applyUpdate(next, { runs: [], cursor: 6, deleted: [99] }, false);
  assert.equal(same, next);
});

test('starred runs list first within their model, under any order', () => {
  const runs = [run(1, 'a'), run(2, 'a', { starred: true }), run(3, 'a')];
  assert.deepEqual(summary(buildRows(runs, NEWEST)), ['[a]', '#2', '#3', '#1']);
  const byLoss: ViewOptions = { ...NEWEST, sortBy: { kind: 'metric', metric: 'loss' } };
  const scored = [
    run(1, 'a', { best: { loss: 0.1 }, directions: { loss: 'min' } }),
    run(2, 'a', { best: { loss: 0.5 }, starred: true }),
    run(3, 'a', { best: { loss: 0.3 } })
  ];
  assert.deepEqual(summary(buildRows(scored, byLoss)), ['[a]', '#2', '#1', '#3']);
});

test('device and precision show only where they differ from the usual', () => {
  const runs = [
    run(1, 'a', { device: 'CPU', precision: 'float32' }),
    run(2, 'a', { device: 'CPU', precision: 'float32' }),
    run(3, 'a', { device: 'GPU:0', precision: 'mixed' })
  ];
  const common = {
    device: commonValue(runs, r => r.device),
    precision: commonValue(runs, r => r.precision)
  };
  assert.deepEqual(common, { device: 'CPU', precision: 'float32' });
  assert.equal(placeText(runs[0], common), '');
  assert.equal(placeText(runs[2], common), 'GPU:0 · mixed');
  assert.equal(commonValue([], r => r.device), null);
});

test('choosing runs to compare keeps the order of choice', () => {
  let chosen = toggleCompare([], 5);
  chosen = toggleCompare(chosen, 2);
  chosen = toggleCompare(chosen, 9);
  assert.deepEqual(chosen, [5, 2, 9]);
  assert.deepEqual(toggleCompare(chosen, 2), [5, 9]);
  const runs = new Map([[5, run(5, 'a')], [9, run(9, 'b')]]);
  assert.deepEqual(keepExisting(chosen, runs), [5, 9]);
  const all = [5, 9];
  assert.equal(keepExisting(all, runs), all); // unchanged: the same array
});

test('a run whose early stopping kept an earlier epoch is compared by what it holds', () => {
  // run 1 holds epoch 3's weights (val_accuracy 0.97), its last epoch read 0.96
  const a = run(1, 'mnist', {
    last: { val_accuracy: 0.96 },
    best: { val_accuracy: 0.97 },
    kept: { val_accuracy: 0.97 },
    kept_epoch: 3,
    directions: { val_accuracy: 'max' }
  });
  const b = run(2, 'mnist', {
    last: { val_accuracy: 0.965 },
    best: { val_accuracy: 0.965 },
    directions: { val_accuracy: 'max' }
  });
  assert.equal(keptMetrics(a).val_accuracy, 0.97);
  assert.equal(keptMetrics(b).val_accuracy, 0.965);
  const rows = compareRows([a, b]);
  assert.deepEqual(
    rows.map(r => [r.kind, r.values, r.best]),
    [
      ['result', [0.97, 0.965], [0]],
      ['last epoch', [0.96, 0.965], [1]],
      ['best', [0.97, 0.965], [0]]
    ]
  );
});

test('the best of each comparison row follows the metric direction', () => {
  const a = run(1, 'mnist', {
    last: { loss: 0.2, val_accuracy: 0.9 },
    best: { loss: 0.15, val_accuracy: 0.93 },
    directions: { loss: 'min', val_accuracy: 'max' }
  });
  const b = run(2, 'cifar', {
    last: { loss: 0.3, val_accuracy: 0.95 },
    best: { loss: 0.1, val_accuracy: 0.95 },
    directions: { loss: 'min', val_accuracy: 'max' }
  });
  const rows = compareRows([a, b]);
  assert.deepEqual(
    rows.map(r => [r.metric, r.kind, r.best]),
    [
      ['val_accuracy', 'result', [1]],
      ['val_accuracy', 'best', [1]],
      ['loss', 'result', [0]],
      ['loss', 'best', [1]]
    ]
  );
  assert.deepEqual(bestIndices([0.5, null, 0.5], 'max'), [0, 2]);
  assert.deepEqual(bestIndices([0.5, 0.7], undefined), []);
  assert.deepEqual(bestIndices([0.5, null], 'min'), []);
});

test('a spec diff shows removed lines before the added ones', () => {
  const diff = lineDiff('input 784\ndense 32 relu\ndense 10 softmax\n', 'input 784\ndense 128 relu\ndropout 0.2\ndense 10 softmax');
  assert.deepEqual(
    diff.map(d => `${d.op}${d.text}`),
    [' input 784', '-dense 32 relu', '+dense 128 relu', '+dropout 0.2', ' dense 10 softmax']
  );
  assert.deepEqual(lineDiff('a', 'a'), [{ op: ' ', text: 'a' }]);
});

test('only the %fit options that differ are listed', () => {
  assert.deepEqual(
    [...fitLineParts("%fit digits x y -e 20 --val xv yv --no-shuffle --lr-decay -0.5 --csv 'a b.csv'")],
    [
      ['x', 'x'],
      ['y', 'y'],
      ['-e', '20'],
      ['--val', 'xv yv'],
      ['--no-shuffle', 'on'],
      ['--lr-decay', '-0.5'],
      ['--csv', 'a b.csv']
    ]
  );
  assert.deepEqual(
    optionDiffs(['%fit a x y -e 20 --seed 1', '%fit b x y -e 20 -b 64', undefined]),
    [
      { option: 'x', values: ['x', 'x', ''] },
      { option: 'y', values: ['y', 'y', ''] },
      { option: '-e', values: ['20', '20', ''] },
      { option: '--seed', values: ['1', '', ''] },
      { option: '-b', values: ['', '64', ''] }
    ]
  );
  assert.deepEqual(optionDiffs(['%fit a x y -e 3', '%fit b x y -e 3']), []);
});

test('a history exports as CSV at full precision', () => {
  const csv = historyCsv([
    { epoch: 1, loss: 0.123456789, val_loss: null },
    { epoch: 2, loss: 0.1, 'odd,key': 3 }
  ]);
  assert.equal(csv, 'epoch,loss,val_loss,"odd,key"\n1,0.123456789,,\n2,0.1,,3\n');
});

// -- curves ------------------------------------------------------------------------

test('ticks are round numbers, whole on the epoch axis', () => {
  assert.deepEqual(niceTicks(0.0123, 0.0876), [0.02, 0.04, 0.06, 0.08]);
  assert.deepEqual(niceTicks(1, 20, 5, true), [5, 10, 15, 20]);
  assert.deepEqual(niceTicks(1, 3, 5, true), [1, 2, 3]);
  assert.deepEqual(niceTicks(1, 1, 5, true), [1]);
  assert.deepEqual(logTicks(0.003, 2.4), [0.01, 0.1, 1]);
  assert.deepEqual(logTicks(0.2, 0.9), [0.2, 0.5]);
});

test('several runs overlay in one chart per metric', () => {
  const charts = chartsOfRuns([
    { label: 'mnist #1', history: [{ epoch: 1, loss: 1, val_loss: 1.2 }, { epoch: 2, loss: 0.5, val_loss: 0.9 }] },
    { label: 'cifar #2', history: [{ epoch: 1, loss: 2, accuracy: 0.3 }] }
  ]);
  assert.deepEqual(charts.map(c => c.title), ['loss', 'accuracy']);
  assert.deepEqual(
    charts[0].series.map(s => [s.run, s.label, s.validation]),
    [
      [0, 'mnist #1 loss', false],
      [0, 'mnist #1 val_loss', true],
      [1, 'cifar #2 loss', false]
    ]
  );
  assert.deepEqual([charts[0].min, charts[0].max, charts[0].first, charts[0].last], [0.5, 2, 1, 2]);
  assert.deepEqual(charts[1].series.map(s => s.run), [1]);
  // the marked series: validation where the run has it
  assert.deepEqual(markedSeries(charts[0]).map(s => s.label), ['mnist #1 val_loss', 'cifar #2 loss']);
  assert.deepEqual(
    valuesAt(charts[0], 2).map(v => v.value),
    [0.5, 0.9, null]
  );
  assert.ok(logByDefault(charts[0]) && !logByDefault(charts[1]));
});

test('the best point follows the direction', () => {
  const [chart] = chartsOf([{ epoch: 1, acc: 0.5 }, { epoch: 2, acc: 0.9 }, { epoch: 3, acc: 0.9 }]);
  assert.deepEqual(bestPoint(chart.series[0], 'max'), [2, 0.9]);
  assert.deepEqual(bestPoint(chart.series[0], 'min'), [1, 0.5]);
  assert.equal(bestPoint(chart.series[0], undefined), null);
});

test('a log scale puts decades at equal heights', () => {
  const [chart] = chartsOf([{ epoch: 1, loss: 10 }, { epoch: 2, loss: 1 }, { epoch: 3, loss: 0.1 }]);
  const box = { width: 100, height: 100, left: 0, right: 0, top: 0, bottom: 0 };
  assert.equal(linePath(chart.series[0], chart, box, true), 'M0.0 0.0 L50.0 50.0 L100.0 100.0');
});

test('a %fit line wraps between flags, never inside one', () => {
  assert.deepEqual(fitLineGroups('%fit digits x[:100] y -e 20 --val-split 0.2 --lr-decay -0.5 --no-shuffle'), [
    '%fit digits x[:100] y',
    '-e 20',
    '--val-split 0.2',
    '--lr-decay -0.5',
    '--no-shuffle'
  ]);
});

test('formatBytes writes decimal units as the panel does', () => {
  assert.equal(formatBytes(3.2e9), '3.2 GB');
  assert.equal(formatBytes(640e6), '640 MB');
  assert.equal(formatBytes(12_345), '12.3 KB');
  assert.equal(formatBytes(512), '512 B');
});
