/**
 * The list of models and runs, virtualized: only the rows in view (plus a
 * few) exist in the DOM, so ten thousand runs scroll as smoothly as ten.
 * A `%tune` study or a `%fit --cv` is one row (its best value, or mean ±
 * std) that opens onto its runs; there a trial's row shows the study's
 * objective, not the key metric (./trialrow). Every name, metric key and
 * path is rendered as React text, never as HTML.
 */

import * as React from 'react';

import { cvLabel, memberLabel, RunGroup } from './groups';
import { DIRECTION_ARROW, TrialLine, trialLine, trialLineTitle } from './trialrow';

import {
  epochsText,
  formatDuration,
  formatMetric,
  keptMetrics,
  placeText,
  STATUS_MARK,
  Row,
  rowOffsets,
  RunSummary,
  runDuration,
  visibleRange
} from './model';

export interface RunListProps {
  rows: Row[];
  /** The metric shown on each run row (final and best). */
  metric: string | null;
  selected: number | null;
  nowMs: number;
  /** The runs chosen for comparison. */
  compared: readonly number[];
  /** The usual device and precision: rows name theirs only where they differ. */
  common: { device: string | null; precision: string | null };
  onSelect: (id: number) => void;
  onToggle: (model: string) => void;
  /** The selected group's key, or null. */
  selectedGroup: string | null;
  onSelectGroup: (key: string) => void;
  /** Opens or closes a group's runs. */
  onToggleGroup: (key: string) => void;
  onToggleCompare: (id: number) => void;
  onStar: (id: number, starred: boolean) => void;
}

export function RunList(props: RunListProps): JSX.Element {
  const { rows } = props;
  const scroller = React.useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = React.useState(0);
  const [height, setHeight] = React.useState(400);

  React.useEffect(() => {
    const node = scroller.current;
    if (!node) {
      return;
    }
    setHeight(node.clientHeight || 400);
    const observer = new ResizeObserver(() => setHeight(node.clientHeight || 400));
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  const offsets = React.useMemo(() => rowOffsets(rows), [rows]);
  const [start, end] = visibleRange(offsets, scrollTop, height);
  const runIds = React.useMemo(
    () => rows.flatMap(r => (r.kind === 'run' ? [r.run.id] : [])),
    [rows]
  );

  const onKeyDown = (event: React.KeyboardEvent<HTMLDivElement>): void => {
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') {
      return;
    }
    event.preventDefault();
    const at = props.selected === null ? -1 : runIds.indexOf(props.selected);
    const next = event.key === 'ArrowDown' ? at + 1 : Math.max(at - 1, 0);
    if (next < runIds.length) {
      props.onSelect(runIds[next]);
      const index = rows.findIndex(r => r.kind === 'run' && r.run.id === runIds[next]);
      const node = scroller.current;
      if (node && index >= 0) {
        const top = offsets[index];
        const bottom = offsets[index + 1];
        if (top < node.scrollTop) {
          node.scrollTop = top;
        } else if (bottom > node.scrollTop + node.clientHeight) {
          node.scrollTop = bottom - node.clientHeight;
        }
      }
    }
  };

  const items: JSX.Element[] = [];
  for (let i = start; i < end; i++) {
    const row = rows[i];
    const style: React.CSSProperties = {
      top: offsets[i],
      height: offsets[i + 1] - offsets[i]
    };
    if (row.kind === 'group') {
      items.push(
        <GroupRow
          key={`g:${row.group.key}`}
          group={row.group}
          expanded={row.expanded}
          selected={row.group.key === props.selectedGroup}
          style={style}
          onSelect={props.onSelectGroup}
          onToggle={props.onToggleGroup}
        />
      );
      continue;
    }
    items.push(
      row.kind === 'model' ? (
        <div key={`m:${row.name}`} className="nbk-model-row" style={style} role="presentation">
          <button
            className="nbk-model-toggle"
            aria-expanded={!row.collapsed}
            aria-label={`${row.name}: ${row.runs} ${row.runs === 1 ? 'run' : 'runs'}`}
            onClick={() => props.onToggle(row.name)}
          >
            <span className="nbk-caret" aria-hidden="true">
              {row.collapsed ? '▸' : '▾'}
            </span>
            <span className="nbk-model-name">{row.name}</span>
            <span className="nbk-model-count">
              {row.runs} {row.runs === 1 ? 'run' : 'runs'}
              {row.running > 0 ? ` · ${row.running} live` : ''}
            </span>
          </button>
        </div>
      ) : (
        <RunRow
          key={`r:${row.run.id}`}
          run={row.run}
          style={style}
          metric={props.metric}
          selected={row.run.id === props.selected}
          member={row.member ? memberLabel(row.run) : ''}
          trial={trialLine(row.run, row.group)}
          compared={props.compared.includes(row.run.id)}
          place={placeText(row.run, props.common)}
          nowMs={props.nowMs}
          onSelect={props.onSelect}
          onToggleCompare={props.onToggleCompare}
          onStar={props.onStar}
        />
      )
    );
  }

  return (
    <div
      ref={scroller}
      className="nbk-scroller"
      role="listbox"
      aria-label="Runs"
      tabIndex={0}
      onKeyDown={onKeyDown}
      onScroll={event => setScrollTop(event.currentTarget.scrollTop)}
    >
      <div className="nbk-spacer" style={{ height: offsets[rows.length] }}>
        {items}
      </div>
    </div>
  );
}

interface GroupRowProps {
  group: RunGroup;
  expanded: boolean;
  selected: boolean;
  style: React.CSSProperties;
  onSelect: (key: string) => void;
  onToggle: (key: string) => void;
}

/**
 * A study: its name, trials, objective and best value with its trial. A
 * cross-validation: its folds and the mean ± std of the key metric. The
 * caret opens it onto its runs; a click elsewhere shows it in the pane.
 */
function GroupRow(props: GroupRowProps): JSX.Element {
  const { group } = props;
  const study = group.kind === 'study';
  const count = study
    ? `${group.trials.length} ${group.trials.length === 1 ? 'trial' : 'trials'}`
    : `${group.folds} ${group.folds === 1 ? 'fold' : 'folds'}`;
  const what = study ? `study ${group.name}` : `${group.model} cross-validation`;
  const metric = study ? group.objective : group.metric;
  let value = '';
  let detail = '';
  let done = '';
  if (group.kind === 'study') {
    value = group.best ? `best ${formatMetric(group.best.value)}` : 'no trial done';
    detail = group.best && group.best.number !== null ? `trial ${group.best.number}` : '';
  } else if (group.stats) {
    value = `${formatMetric(group.stats.mean)} ± ${formatMetric(group.stats.std)}`;
    done = group.stats.n < group.folds ? `${group.stats.n} done` : '';
  } else {
    value = 'no fold done';
  }
  const started = study ? '' : `started ${startedText(group.runs)}`;
  const title = [what, count, done,
    metric ? `${metric}: ${value}` : value, detail, started]
    .filter(Boolean)
    .join(' · ');
  return (
    <div
      className={`nbk-group-row nbk-group-${group.kind}${props.selected ? ' nbk-selected' : ''}`}
      style={props.style}
      role="option"
      aria-selected={props.selected}
      aria-label={study ? `study ${group.name}` : `cross-validation ${group.name}`}
      data-group-key={group.key}
      title={title}
      onClick={() => props.onSelect(group.key)}
    >
      <div className="nbk-line">
        <button
          className="nbk-group-toggle"
          aria-expanded={props.expanded}
          aria-label={`${props.expanded ? 'Close' : 'Open'} ${what}`}
          onClick={event => {
            event.stopPropagation();
            props.onToggle(group.key);
          }}
        >
          {props.expanded ? '▾' : '▸'}
        </button>
        <span className="nbk-group-kind">{study ? 'study' : 'cv'}</span>{' '}
        {study ? (
          <span className="nbk-group-name">{group.name}</span>
        ) : (
          <span className="nbk-group-name nbk-group-fitline" title={cvLabel(group)}>
            {cvLabel(group)}
          </span>
        )}{' '}
        <span className="nbk-group-count">
          {count}
          {done ? ` · ${done}` : ''}
          {group.running > 0 ? ` · ${group.running} live` : ''}
        </span>
      </div>
      <div className="nbk-line nbk-group-value">
        {metric ? <span className="nbk-metric-key">{metric}</span> : null}{' '}
        <span className="nbk-group-best nbk-num">{value}</span>{' '}
        {detail ? <span className="nbk-group-detail nbk-num">{detail}</span> : null}
      </div>
    </div>
  );
}

/** When a group's first run started: "14:05", or "Mar 3, 14:05" on another day. */
function startedText(runs: readonly RunSummary[]): string {
  const first = Math.min(...runs.map(r => Date.parse(r.started)).filter(t => !Number.isNaN(t)));
  if (!Number.isFinite(first)) {
    return '';
  }
  const when = new Date(first);
  const time = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return when.toDateString() === new Date().toDateString()
    ? time
    : `${when.toLocaleDateString([], { month: 'short', day: 'numeric' })}, ${time}`;
}

interface RunRowProps {
  run: RunSummary;
  style: React.CSSProperties;
  metric: string | null;
  selected: boolean;
  /** What the run is in its open group ('trial 3', 'fold 2/3'), else ''. */
  member: string;
  /** A study's trial: its objective replaces the key metric. */
  trial: TrialLine | null;
  compared: boolean;
  /** Device and precision where they differ from the usual ones, else ''. */
  place: string;
  nowMs: number;
  onSelect: (id: number) => void;
  onToggleCompare: (id: number) => void;
  onStar: (id: number, starred: boolean) => void;
}

function RunRow(props: RunRowProps): JSX.Element {
  const { run, metric } = props;
  const live = run.status === 'running';
  const bestEpoch = metric !== null ? run.best_epoch[metric] : undefined;
  const notebook = run.notebook ? run.notebook.split('/').pop() : null;
  // the run's result is what its model holds (an earlier epoch after early stopping)
  const final = metric !== null ? formatMetric(keptMetrics(run)[metric]) : '';
  const keptAt =
    metric !== null && run.kept && typeof run.kept_epoch === 'number'
      ? ` (epoch ${run.kept_epoch}; last ${formatMetric(run.last[metric])})`
      : '';
  const best =
    metric !== null
      ? `best ${formatMetric(run.best[metric])}${typeof bestEpoch === 'number' ? ` @${bestEpoch}` : ''}`
      : '';
  const label = `${run.model} run ${run.id}`;
  const duration = formatDuration(runDuration(run, props.nowMs));
  return (
    <div
      className={`nbk-run-row${props.selected ? ' nbk-selected' : ''}${props.compared ? ' nbk-compared' : ''}${props.member ? ' nbk-member' : ''}`}
      style={props.style}
      role="option"
      aria-selected={props.selected}
      aria-label={label}
      data-run-id={run.id}
      onClick={event => {
        if (event.ctrlKey || event.metaKey) {
          props.onToggleCompare(run.id);
        } else {
          props.onSelect(run.id);
        }
      }}
    >
      <div className="nbk-line">
        <input
          type="checkbox"
          className="nbk-compare-check"
          checked={props.compared}
          aria-label={`Compare ${label}`}
          title="Compare (or ctrl/cmd-click the row)"
          onClick={event => event.stopPropagation()}
          onChange={() => props.onToggleCompare(run.id)}
        />
        <span
          className={`nbk-status nbk-status-${run.status}${live ? ' nbk-live' : ''}`}
          title={run.status}
          aria-hidden="true"
        >
          {STATUS_MARK[run.status] ?? '?'}
        </span>
        <span className="nbk-run-id">#{run.id}</span>
        {props.member ? <span className="nbk-member-tag">{props.member}</span> : null}
        <span className={`nbk-status-text nbk-status-${run.status}`}>{run.status}</span>
        <button
          className={`nbk-star${run.starred ? ' nbk-starred' : ''}`}
          aria-label={`${run.starred ? 'Unpin' : 'Pin'} ${label}`}
          aria-pressed={!!run.starred}
          title={run.starred ? 'Pinned: listed first (click to unpin)' : 'Pin: list first'}
          onClick={event => {
            event.stopPropagation();
            props.onStar(run.id, !run.starred);
          }}
        >
          {run.starred ? '★' : '☆'}
        </button>
      </div>
      {props.trial ? (
        <TrialMetric line={props.trial} />
      ) : (
        <div className="nbk-line" title={metric !== null ? `${metric}: result ${final}${keptAt}, ${best}` : ''}>
          {metric !== null ? (
            <>
              <span className="nbk-metric-last nbk-num">{final}</span>{' '}
              <span className="nbk-metric-best nbk-num">{best}</span>
            </>
          ) : null}
        </div>
      )}
      <div className="nbk-line nbk-sub">
        <span className="nbk-epochs nbk-num" title="epochs done of planned">
          {epochsText(run)} ep
        </span>
        <span className="nbk-duration nbk-num">{duration}</span>
        {props.place ? (
          <span className="nbk-place" title="where it differs from the usual device and precision">
            {props.place}
          </span>
        ) : null}
        {notebook ? (
          <span className="nbk-notebook" title={run.notebook ?? ''}>
            {notebook}
          </span>
        ) : null}
      </div>
    </div>
  );
}

/**
 * A trial's metric line: the study's objective with its direction, its value
 * for the weights the run keeps, and a 'best' tag on the best trial. The
 * name gives way (an ellipsis, the line's title says it in full); the number
 * and the tag never do.
 */
function TrialMetric(props: { line: TrialLine }): JSX.Element {
  const { line } = props;
  return (
    <div className="nbk-line nbk-trial-line" title={trialLineTitle(line)}>
      <span className="nbk-metric-key nbk-trial-objective">{line.objective}</span>{' '}
      {line.direction ? (
        <>
          <span className="nbk-trial-direction" aria-hidden="true">
            {DIRECTION_ARROW[line.direction]}
          </span>{' '}
        </>
      ) : null}
      <span className="nbk-metric-last nbk-num">{formatMetric(line.value)}</span>
      {line.best ? (
        <>
          {' '}
          <span className="nbk-best-tag">best</span>
        </>
      ) : null}
    </div>
  );
}
