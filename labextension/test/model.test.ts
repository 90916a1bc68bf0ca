/**
 * Unit tests of the panel's model: merging `since` updates, grouping,
 * filtering and sorting rows, the virtualized list's arithmetic, formatting
 * and the curve paths. Run with `npm test` (tsc, then node's test runner).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  applyUpdate,
  buildRows,
  defaultMetric,
  EMPTY_STATE,
  epochsText,
  formatDuration,
  formatMetric,
  metricDirection,
  metricKeys,
  modelCell,
  relativePath,
  Row,
  rowOffsets,
  RunSummary,
  ViewOptions,
  visibleRange
} from '../src/model';
import { chartsOf, linePath } from '../src/curves';

function run(id: number, model: string, extra: Partial<RunSummary> = {}): RunSummary {
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

const NEWEST: ViewOptions = { filter: '', sortBy: { kind: 'newest' }, collapsed: new Set() };

function summary(rows: Row[]): string[] {
  return rows.map(r => (r.kind === 'model' ? `[${r.name}]` : `#${r.run.id}`));
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
