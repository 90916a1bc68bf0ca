/**
 * The selected run: its curves (SVG drawn here), final and best metrics,
 * options, evaluations and spec, with a button that copies the spec as a
 * `%%model` cell.
 */

import * as React from 'react';

import { Box, Chart, chartsOf, linePath } from './curves';
import {
  epochsText,
  formatDuration,
  formatMetric,
  metricKeys,
  RunDetail,
  runDuration
} from './model';

export interface RunDetailsProps {
  runId: number;
  detail: RunDetail | null;
  error: string | null;
  nowMs: number;
  onClose: () => void;
  onCopySpec: (detail: RunDetail) => Promise<void>;
  onOpenNotebook: (path: string) => void;
  notebookPath: (path: string) => string;
}

export function RunDetails(props: RunDetailsProps): JSX.Element {
  const { detail } = props;
  const [copied, setCopied] = React.useState(false);
  React.useEffect(() => setCopied(false), [props.runId]);

  const copy = async (): Promise<void> => {
    if (detail) {
      await props.onCopySpec(detail);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    }
  };

  // Options left at their default (None, False) say nothing.
  const options = detail
    ? Object.entries(detail.options).filter(([, v]) => v !== null && v !== false)
    : [];
  const notebook = detail?.notebook ? props.notebookPath(detail.notebook) : null;
  const title = detail ? `${detail.model} · run #${detail.id}` : `Run #${props.runId}`;
  return (
    <section className="nbk-details" aria-label="Run details">
      <header className="nbk-details-header">
        <h3 className="nbk-details-title">{title}</h3>
        <button className="nbk-icon-button" aria-label="Close run details" onClick={props.onClose}>
          ✕
        </button>
      </header>
      {props.error ? <p className="nbk-error">{props.error}</p> : null}
      {!detail && !props.error ? <p className="nbk-muted">Loading…</p> : null}
      {detail ? (
        <>
          <p className="nbk-facts">
            <span className={`nbk-status-text nbk-status-${detail.status}`}>{detail.status}</span>
            {' · '}
            {epochsText(detail)} epochs · {formatDuration(runDuration(detail, props.nowMs))}
            {detail.device ? ` · ${detail.device}` : ''}
            {detail.backend ? ` · ${detail.backend}` : ''}
          </p>
          {notebook ? (
            <p className="nbk-facts">
              <button
                className="nbk-link"
                title={`Open ${notebook}`}
                onClick={() => props.onOpenNotebook(notebook)}
              >
                {notebook}
              </button>
            </p>
          ) : null}
          {detail.error ? <pre className="nbk-error">{detail.error}</pre> : null}
          <Curves history={detail.history} />
          <MetricsTable detail={detail} />
          {detail.evaluations.length > 0 ? (
            <>
              <h4>Evaluations</h4>
              <ul className="nbk-kv">
                {detail.evaluations.map(ev => (
                  <li key={ev.id}>
                    {Object.entries(ev.metrics)
                      .map(([k, v]) => `${k} ${formatMetric(v)}`)
                      .join(' · ')}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          {options.length > 0 ? (
            <>
              <h4>Options</h4>
              <ul className="nbk-kv">
                {options.map(([k, v]) => (
                  <li key={k}>
                    <span className="nbk-metric-key">{k}</span> {JSON.stringify(v)}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h4>Spec</h4>
          {detail.spec ? (
            <>
              <pre className="nbk-spec">{detail.spec}</pre>
              <button className="nbk-button" onClick={() => void copy()}>
                {copied ? 'Copied' : 'Copy as %%model cell'}
              </button>
            </>
          ) : (
            <p className="nbk-muted">No spec recorded (not built by %%model).</p>
          )}
        </>
      ) : null}
    </section>
  );
}

function MetricsTable(props: { detail: RunDetail }): JSX.Element | null {
  const { detail } = props;
  const keys = metricKeys([detail]);
  if (keys.length === 0) {
    return null;
  }
  return (
    <table className="nbk-metrics" aria-label="Final metrics">
      <thead>
        <tr>
          <th scope="col">metric</th>
          <th scope="col">final</th>
          <th scope="col">best</th>
          <th scope="col">epoch</th>
        </tr>
      </thead>
      <tbody>
        {keys.map(key => (
          <tr key={key}>
            <th scope="row">{key}</th>
            <td>{formatMetric(detail.last[key])}</td>
            <td>{formatMetric(detail.best[key])}</td>
            <td>{typeof detail.best_epoch[key] === 'number' ? detail.best_epoch[key] : '–'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const BOX: Box = { width: 280, height: 120, left: 44, right: 8, top: 8, bottom: 18 };
const COLORS = ['var(--jp-brand-color1, #1976d2)', 'var(--jp-warn-color1, #f57c00)'];

function Curves(props: { history: RunDetail['history'] }): JSX.Element | null {
  const charts = React.useMemo(() => chartsOf(props.history), [props.history]);
  if (charts.length === 0) {
    return null;
  }
  return (
    <div className="nbk-charts">
      {charts.map(chart => (
        <ChartView key={chart.title} chart={chart} />
      ))}
    </div>
  );
}

/** An axis label: 3 significant digits. */
function tick(value: number): string {
  return String(Number(value.toPrecision(3)));
}

function ChartView(props: { chart: Chart }): JSX.Element {
  const { chart } = props;
  const bottom = BOX.height - BOX.bottom;
  return (
    <figure className="nbk-chart">
      <svg
        viewBox={`0 0 ${BOX.width} ${BOX.height}`}
        role="img"
        aria-label={`${chart.title} curves`}
      >
        <line className="nbk-axis" x1={BOX.left} y1={BOX.top} x2={BOX.left} y2={bottom} />
        <line className="nbk-axis" x1={BOX.left} y1={bottom} x2={BOX.width - BOX.right} y2={bottom} />
        <text className="nbk-tick" x={BOX.left - 4} y={BOX.top + 8} textAnchor="end">
          {tick(chart.max)}
        </text>
        <text className="nbk-tick" x={BOX.left - 4} y={bottom} textAnchor="end">
          {tick(chart.min)}
        </text>
        <text className="nbk-tick" x={BOX.left} y={BOX.height - 4}>
          {chart.first}
        </text>
        <text className="nbk-tick" x={BOX.width - BOX.right} y={BOX.height - 4} textAnchor="end">
          epoch {chart.last}
        </text>
        {chart.series.map((series, i) => (
          <path
            key={series.key}
            d={linePath(series, chart, BOX)}
            fill="none"
            stroke={COLORS[i % COLORS.length]}
            strokeWidth={1.5}
            strokeDasharray={series.validation ? '4 3' : undefined}
          />
        ))}
      </svg>
      <figcaption className="nbk-legend">
        {chart.series.map((series, i) => (
          <span key={series.key} className="nbk-legend-item">
            <span
              className={`nbk-swatch${series.validation ? ' nbk-dashed' : ''}`}
              style={{ borderColor: COLORS[i % COLORS.length] }}
            />
            {series.key}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
