/**
 * Several runs side by side: their curves overlaid per metric (a colour per
 * run, a legend "model #run"), a table of final and best metrics with the
 * best of each row marked by the metric's direction, the `%fit` options that
 * differ, and a line diff of each spec against the first run's. Runs of
 * different models compare too.
 */

import * as React from 'react';

import { ChartView, COLORS } from './ChartView';
import { chartsOfRuns } from './curves';
import {
  compareRows,
  Direction,
  formatMetric,
  lineDiff,
  optionDiffs,
  RunDetail,
  runLabel,
  RunSummary
} from './model';

export interface CompareViewProps {
  /** The compared runs in the order chosen (summaries, always known). */
  runs: RunSummary[];
  /** Their details by id, once fetched (history, spec, %fit line). */
  details: ReadonlyMap<number, RunDetail>;
  onRemove: (id: number) => void;
}

export function CompareView(props: CompareViewProps): JSX.Element {
  const { runs, details } = props;
  const loaded = runs.map(r => details.get(r.id)).filter((d): d is RunDetail => !!d);
  const charts = React.useMemo(
    () =>
      chartsOfRuns(
        runs.map(r => ({ label: runLabel(r), history: details.get(r.id)?.history ?? [] }))
      ),
    [runs, details]
  );
  const directions: Record<string, Direction> = {};
  for (const run of runs) {
    for (const [k, v] of Object.entries(run.directions ?? {})) {
      directions[k] = directions[k] ?? v;
    }
  }
  const rows = compareRows(runs);
  const options = loaded.length === runs.length ? optionDiffs(loaded.map(d => d.fit_line)) : [];
  const first = loaded[0];

  return (
    <div className="nbk-compare">
      <ul className="nbk-compare-legend" aria-label="Compared runs">
        {runs.map((run, i) => (
          <li key={run.id} className="nbk-legend-item">
            <span className="nbk-swatch" style={{ borderColor: COLORS[i % COLORS.length] }} />
            <span className="nbk-legend-label">{runLabel(run)}</span>
            <button
              className="nbk-icon-button"
              aria-label={`Remove ${runLabel(run)} from the comparison`}
              onClick={() => props.onRemove(run.id)}
            >
              ✕
            </button>
          </li>
        ))}
      </ul>
      <p className="nbk-muted-inline nbk-legend-note">solid: training · dashed: validation</p>
      {loaded.length < runs.length ? <p className="nbk-muted">Loading curves…</p> : null}
      <div className="nbk-charts">
        {charts.map(chart => (
          <ChartView key={chart.title} chart={chart} directions={directions} byRun={true} />
        ))}
      </div>
      <h4>Final and best metrics</h4>
      <div className="nbk-table-scroll">
        <table className="nbk-metrics nbk-compare-table" aria-label="Metrics compared">
          <thead>
            <tr>
              <th scope="col" className="nbk-kind">
                metric
              </th>
              {runs.map((run, i) => (
                <th key={run.id} scope="col" title={runLabel(run)}>
                  <span className="nbk-swatch" style={{ borderColor: COLORS[i % COLORS.length] }} />
                  #{run.id}
                </th>
              ))}
            </tr>
          </thead>
          {metricsOf(rows).map(metric => (
            <tbody key={metric}>
              <tr className="nbk-metric-head">
                <th scope="rowgroup" colSpan={runs.length + 1} title={metric}>
                  {metric}
                </th>
              </tr>
              {rows
                .filter(row => row.metric === metric)
                .map(row => (
                  <tr key={row.kind} className={`nbk-row-${row.kind}`}>
                    <th scope="row" className="nbk-kind">
                      {row.kind}
                    </th>
                    {row.values.map((v, i) => {
                      const best = row.best.includes(i);
                      return (
                        <td
                          key={runs[i].id}
                          className={best ? 'nbk-best' : undefined}
                          title={`${runLabel(runs[i])} ${row.metric} ${row.kind}${best ? ' (best)' : ''}`}
                        >
                          {formatMetric(v)}
                        </td>
                      );
                    })}
                  </tr>
                ))}
            </tbody>
          ))}
        </table>
      </div>
      <h4>Options that differ</h4>
      {loaded.length === runs.length ? (
        options.length ? (
          <div className="nbk-table-scroll">
            <table className="nbk-metrics nbk-options-table" aria-label="Options compared">
              <thead>
                <tr>
                  <th scope="col">option</th>
                  {runs.map(run => (
                    <th key={run.id} scope="col">
                      #{run.id}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {options.map(d => (
                  <tr key={d.option}>
                    <th scope="row">{d.option}</th>
                    {d.values.map((v, i) => (
                      <td key={runs[i].id} className="nbk-code">
                        {v || '–'}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p className="nbk-muted-inline">None: the same %fit options.</p>
        )
      ) : null}
      <h4>Spec differences</h4>
      {first
        ? loaded.slice(1).map(other => <SpecDiff key={other.id} a={first} b={other} />)
        : null}
    </div>
  );
}

/** The metrics of the comparison rows, in order, each once. */
function metricsOf(rows: ReturnType<typeof compareRows>): string[] {
  return [...new Set(rows.map(r => r.metric))];
}

function SpecDiff(props: { a: RunDetail; b: RunDetail }): JSX.Element {
  const { a, b } = props;
  const title = `${runLabel(a)} → ${runLabel(b)}`;
  if ((a.spec ?? '') === (b.spec ?? '')) {
    return (
      <p className="nbk-muted-inline">
        {title}: {a.spec ? 'the same spec' : 'no spec recorded'}
      </p>
    );
  }
  const lines = lineDiff(a.spec ?? '', b.spec ?? '');
  return (
    <figure className="nbk-diff" aria-label={`Spec diff ${title}`}>
      <figcaption className="nbk-diff-title">{title}</figcaption>
      <pre className="nbk-spec">
        {lines.map((line, i) => (
          <div key={i} className={`nbk-diff-line nbk-diff-${line.op === '+' ? 'add' : line.op === '-' ? 'del' : 'same'}`}>
            {line.op} {line.text}
          </div>
        ))}
      </pre>
    </figure>
  );
}
