/**
 * The selected run: the `%fit` line that produced it, its curves, final and
 * best metrics, evaluations and spec, with a button that copies the spec as
 * a `%%model` cell; star, CSV export of its history and deletion (of the
 * run or of its model version, each confirmed first).
 */

import * as React from 'react';

import { ChartView } from './ChartView';
import { chartsOf } from './curves';
import {
  epochsText,
  fitLineGroups,
  formatBytes,
  formatDuration,
  formatMetric,
  historyCsv,
  keptMetrics,
  metricKeys,
  precisionText,
  RunDetail,
  runDuration
} from './model';

export interface RunDetailsProps {
  runId: number;
  detail: RunDetail | null;
  error: string | null;
  nowMs: number;
  onCopySpec: (detail: RunDetail) => Promise<void>;
  onOpenNotebook: (path: string) => void;
  notebookPath: (path: string) => string;
  onStar: (id: number, starred: boolean) => void;
  onDeleteRun: (detail: RunDetail) => void;
  onDeleteVersion: (detail: RunDetail) => void;
}

/** Saves `text` as a file the browser downloads. */
function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
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

  const notebook = detail?.notebook ? props.notebookPath(detail.notebook) : null;
  return (
    <div className="nbk-details-body">
      {props.error ? <p className="nbk-error">{props.error}</p> : null}
      {!detail && !props.error ? <p className="nbk-muted">Loading…</p> : null}
      {detail ? (
        <>
          <p className="nbk-facts">
            <span className={`nbk-status-text nbk-status-${detail.status}`}>{detail.status}</span>
            {' · '}
            {epochsText(detail)} epochs · {formatDuration(runDuration(detail, props.nowMs))}
          </p>
          <p className="nbk-facts">
            {[
              detail.device,
              // the kernel's device text may already say it ("CPU · mixed precision off")
              /precision/.test(detail.device ?? '') ? null : precisionText(detail),
              detail.backend,
              typeof detail.options?.peak_memory === 'number'
                ? `peak memory ${formatBytes(detail.options.peak_memory as number)}`
                : null
            ]
              .filter(Boolean)
              .join(' · ')}
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
          {detail.fit_line ? (
            <pre className="nbk-fitline" aria-label="The %fit line of this run" title={detail.fit_line}>
              {fitLineGroups(detail.fit_line).map((group, i) => (
                <React.Fragment key={i}>
                  {i > 0 ? ' ' : null}
                  <span className="nbk-nowrap">{group}</span>
                </React.Fragment>
              ))}
            </pre>
          ) : null}
          {detail.error ? <pre className="nbk-error">{detail.error}</pre> : null}
          <Curves detail={detail} />
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
          <h4>Manage</h4>
          <div className="nbk-actions">
            <button
              className="nbk-button"
              onClick={() =>
                download(`${detail.model}-run-${detail.id}.csv`, historyCsv(detail.history))
              }
              disabled={detail.history.length === 0}
            >
              Export history as CSV
            </button>
            <button className="nbk-button nbk-danger" onClick={() => props.onDeleteRun(detail)}>
              Delete run
            </button>
            {detail.version_id !== null ? (
              <button
                className="nbk-button nbk-danger"
                onClick={() => props.onDeleteVersion(detail)}
              >
                Delete model version…
              </button>
            ) : null}
          </div>
        </>
      ) : null}
    </div>
  );
}

function MetricsTable(props: { detail: RunDetail }): JSX.Element | null {
  const { detail } = props;
  const keys = metricKeys([detail]);
  if (keys.length === 0) {
    return null;
  }
  return (
    <table className="nbk-metrics" aria-label="Results">
      <thead>
        <tr>
          <th scope="col">metric</th>
          <th scope="col" title="the value of the weights the model holds">
            {detail.kept ? `result @${detail.kept_epoch}` : 'result'}
          </th>
          {detail.kept ? <th scope="col">last</th> : null}
          <th scope="col" title="best value @ epoch">
            best @ep
          </th>
        </tr>
      </thead>
      <tbody>
        {keys.map(key => (
          <tr key={key}>
            <th scope="row" title={key}>
              {key}
            </th>
            <td>{formatMetric(keptMetrics(detail)[key])}</td>
            {detail.kept ? <td>{formatMetric(detail.last[key])}</td> : null}
            <td>
              {formatMetric(detail.best[key])}
              {typeof detail.best_epoch[key] === 'number' ? (
                <span className="nbk-at"> @{detail.best_epoch[key]}</span>
              ) : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Curves(props: { detail: RunDetail }): JSX.Element | null {
  const { detail } = props;
  const charts = React.useMemo(() => chartsOf(detail.history), [detail.history]);
  if (charts.length === 0) {
    return null;
  }
  return (
    <div className="nbk-charts">
      {charts.map(chart => (
        <ChartView key={chart.title} chart={chart} directions={detail.directions ?? {}} byRun={false} />
      ))}
    </div>
  );
}
