/**
 * A selected group in the bottom pane. A study: its objective and best
 * trial, a parallel-coordinates view (one axis per search space and one for
 * the objective, a line per finished trial coloured by its objective, the
 * best in red) and the trials table, sortable by any column. A
 * cross-validation: mean ± std of each metric and the table of its folds.
 */

import * as React from 'react';

import {
  byObjective,
  CvGroup,
  heldValue,
  meanStd,
  sortTrials,
  StudyGroup,
  Trial,
  TrialColumn,
  valueText
} from './groups';
import { formatMetric, metricKeys, STATUS_MARK } from './model';
import {
  Axis,
  fitText,
  goodness,
  goodnessColor,
  layout,
  objectiveAxis,
  SpaceInfo,
  spaceAxis,
  trialPoints
} from './parcoords';

export interface StudyViewProps {
  group: StudyGroup;
  /** The spaces of the study's model version: undefined while loading, null if unknown. */
  spaces: SpaceInfo[] | null | undefined;
  onSelectRun: (id: number) => void;
}

const DIRECTION_TEXT = { min: 'lower is better', max: 'higher is better' } as const;

export function StudyView(props: StudyViewProps): JSX.Element {
  const { group } = props;
  const counts = new Map<string, number>();
  for (const trial of group.trials) {
    counts.set(trial.status, (counts.get(trial.status) ?? 0) + 1);
  }
  return (
    <div className="nbk-details-body nbk-study">
      <p className="nbk-facts">
        {group.objective ? (
          <>
            <span className="nbk-metric-key">{group.objective}</span>
            {group.direction ? `, ${DIRECTION_TEXT[group.direction]}` : ''}
          </>
        ) : (
          'no objective recorded'
        )}
      </p>
      <p className="nbk-facts">
        {group.best
          ? `best ${formatMetric(group.best.value)}` +
            (group.best.number !== null ? ` · trial ${group.best.number}` : '')
          : 'no trial completed yet'}
      </p>
      <p className="nbk-facts">
        {[...counts.entries()].map(([status, n]) => `${n} ${status}`).join(' · ')}
      </p>
      <ParallelCoordinates group={group} spaces={props.spaces} />
      <TrialsTable group={group} onSelectRun={props.onSelectRun} />
    </div>
  );
}

function ParallelCoordinates(props: {
  group: StudyGroup;
  spaces: SpaceInfo[] | null | undefined;
}): JSX.Element | null {
  const { group, spaces } = props;
  const finished = group.trials.filter(t => t.status === 'completed' && t.value !== null);
  const names = spaces && spaces.length ? spaces.map(s => s.name) : group.spaces;
  const axes: Axis[] = React.useMemo(
    () => [
      ...names.map(name => spaceAxis(name, finished, spaces?.find(s => s.name === name))),
      objectiveAxis(group.objective ?? 'objective', finished, group.direction)
    ],
    [group, spaces]
  );
  if (finished.length === 0 || group.objective === null) {
    return <p className="nbk-muted-inline">The view draws the completed trials: none yet.</p>;
  }
  const box = layout(axes.length);
  const values = finished.map(t => t.value as number);
  const objectiveIndex = axes.length - 1;
  const room = box.xs.length > 1 ? box.xs[1] - box.xs[0] : box.width;
  const line = (trial: Trial): string =>
    trialPoints(trial, axes, box, objectiveIndex)
      .map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`)
      .join(' ');
  const best = group.best;
  return (
    <figure className="nbk-parcoords">
      <svg
        viewBox={`0 0 ${box.width} ${box.height}`}
        role="img"
        aria-label={`Parallel coordinates of study ${group.name}`}
      >
        {axes.map((axis, i) => {
          const x = box.xs[i];
          // names alternate between two rows so neighbours never collide
          const labelY = i % 2 === 0 ? 9 : 19;
          const anchor = i === 0 ? 'start' : i === axes.length - 1 ? 'end' : 'middle';
          // a name shares its row with the names two axes away: half that gap each
          const labelRoom = anchor === 'middle' ? 2 * room - 12 : room + 6;
          return (
            <g key={axis.name} className="nbk-pc-axis">
              <line className="nbk-axis" x1={x} x2={x} y1={box.top} y2={box.bottom} />
              <text
                className={`nbk-pc-name${i === objectiveIndex ? ' nbk-pc-objective' : ''}`}
                x={i === 0 ? x - 8 : i === axes.length - 1 ? x + 8 : x}
                y={labelY}
                textAnchor={anchor}
              >
                <title>{axis.scale === 'log' ? `${axis.name} (log scale)` : axis.name}</title>
                {fitText(axis.name, labelRoom)}
              </text>
              {axis.ticks.map(tick => {
                const y = box.bottom - tick.at * (box.bottom - box.top);
                const categorical = axis.scale === 'category';
                const last = i === axes.length - 1;
                return (
                  <text
                    key={`${tick.label}:${tick.at}`}
                    className="nbk-tick"
                    x={categorical ? (last ? x - 3 : x + 3) : x}
                    y={categorical ? y + 3 : tick.at >= 0.5 ? y - 3 : y + 10}
                    textAnchor={categorical ? (last ? 'end' : 'start') : anchor}
                  >
                    <title>{tick.label}</title>
                    {fitText(tick.label, categorical ? room - 6 : room)}
                  </text>
                );
              })}
            </g>
          );
        })}
        {finished
          .filter(t => t !== best)
          .map((trial, i) => (
            <polyline
              key={i}
              className="nbk-pc-line"
              points={line(trial)}
              stroke={goodnessColor(goodness(trial.value as number, values, group.direction))}
            >
              <title>{`trial ${trial.number ?? '?'}: ${formatMetric(trial.value)}`}</title>
            </polyline>
          ))}
        {best ? (
          <polyline className="nbk-pc-line nbk-pc-best" points={line(best)}>
            <title>{`best: trial ${best.number ?? '?'}: ${formatMetric(best.value)}`}</title>
          </polyline>
        ) : null}
      </svg>
      <figcaption className="nbk-legend nbk-pc-legend">
        <span className="nbk-legend-item">
          <span className="nbk-pc-ramp" aria-hidden="true" />
          worse → better
        </span>
        <span className="nbk-legend-item">
          <span className="nbk-swatch nbk-pc-best-swatch" aria-hidden="true" />
          best
        </span>
      </figcaption>
    </figure>
  );
}

type Sort = { column: TrialColumn; ascending: boolean } | null;

function columnId(column: TrialColumn): string {
  return column.kind === 'space' ? `space:${column.name}` : column.kind;
}

function TrialsTable(props: { group: StudyGroup; onSelectRun: (id: number) => void }): JSX.Element {
  const { group } = props;
  // null: the objective, best first (the default)
  const [sort, setSort] = React.useState<Sort>(null);
  const trials = React.useMemo(
    () =>
      sort === null
        ? [...group.trials].sort(byObjective(group.direction))
        : sortTrials(group.trials, sort.column, sort.ascending),
    [group, sort]
  );
  const columns: Array<{ column: TrialColumn; label: string }> = [
    { column: { kind: 'trial' }, label: 'trial' },
    // the objective beside the trial: it stays in view when the spaces scroll
    { column: { kind: 'value' }, label: group.objective ?? 'value' },
    ...group.spaces.map(name => ({ column: { kind: 'space', name } as TrialColumn, label: name })),
    { column: { kind: 'status' }, label: 'state' }
  ];
  const current = sort === null ? 'value' : columnId(sort.column);
  const ascendingNow =
    sort === null ? group.direction === 'min' : sort.ascending;
  const click = (column: TrialColumn): void => {
    const id = columnId(column);
    if (id === current) {
      setSort({ column, ascending: !ascendingNow });
    } else {
      setSort({ column, ascending: column.kind === 'value' ? group.direction === 'min' : true });
    }
  };
  return (
    <div className="nbk-table-scroll">
      <table className="nbk-metrics nbk-trials" aria-label="Trials">
        <thead>
          <tr>
            {columns.map(({ column, label }) => {
              const id = columnId(column);
              const sorted = id === current;
              return (
                <th
                  key={id}
                  scope="col"
                  aria-sort={sorted ? (ascendingNow ? 'ascending' : 'descending') : 'none'}
                >
                  <button
                    className="nbk-sort-head"
                    title={`${label}: click to sort`}
                    onClick={() => click(column)}
                  >
                    <span className="nbk-sort-label">{breakable(label)}</span>
                    {sorted ? (ascendingNow ? '\u00a0▴' : '\u00a0▾') : ''}
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {trials.map(trial => (
            <tr
              key={trial.runs[0].id}
              className={trial === group.best ? 'nbk-best-row' : undefined}
            >
              <td>
                <button
                  className="nbk-link"
                  title={`Show run #${trial.runs[0].id}`}
                  onClick={() => props.onSelectRun(trial.runs[0].id)}
                >
                  {trial.number ?? '?'}
                </button>
              </td>
              <td className={trial === group.best ? 'nbk-best' : undefined}>
                {formatMetric(trial.value)}
              </td>
              {group.spaces.map(name => (
                <td key={name} title={valueText(trial.values[name])}>
                  {typeof trial.values[name] === 'number' && !Number.isInteger(trial.values[name])
                    ? formatMetric(trial.values[name] as number)
                    : valueText(trial.values[name])}
                </td>
              ))}
              <td
                className={`nbk-kind nbk-status-${trial.status}`}
                title={trial.status}
                aria-label={trial.status}
              >
                {STATUS_MARK[trial.status] ?? trial.status}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}


/** A column name that may wrap after its dots and underscores, never mid-word. */
function breakable(label: string): JSX.Element[] {
  return label.split(/(?<=[._])/).map((part, i) => (
    <React.Fragment key={i}>
      {i > 0 ? <wbr /> : null}
      {part}
    </React.Fragment>
  ));
}

export interface CvViewProps {
  group: CvGroup;
  onSelectRun: (id: number) => void;
}

export function CvView(props: CvViewProps): JSX.Element {
  const { group } = props;
  const done = group.runs.filter(r => r.status === 'completed');
  const keys = metricKeys(group.runs);
  const metric = group.metric;
  return (
    <div className="nbk-details-body nbk-cv">
      <p className="nbk-facts">
        {group.folds}-fold cross-validation · {done.length} of {group.folds} folds done
        {group.running ? ` · ${group.running} live` : ''}
      </p>
      <table className="nbk-metrics" aria-label="Mean and standard deviation over the folds">
        <thead>
          <tr>
            <th scope="col">metric</th>
            <th scope="col">mean ± std</th>
          </tr>
        </thead>
        <tbody>
          {keys.map(key => {
            const stats = meanStd(
              done.map(r => heldValue(r, key)).filter((v): v is number => v !== null)
            );
            return (
              <tr key={key} className={key === metric ? 'nbk-best-row' : undefined}>
                <th scope="row" title={key}>
                  {key}
                </th>
                <td>
                  {stats ? `${formatMetric(stats.mean)} ± ${formatMetric(stats.std)}` : '–'}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h4>Folds</h4>
      <table className="nbk-metrics" aria-label="Folds">
        <thead>
          <tr>
            <th scope="col">fold</th>
            <th scope="col" title={metric ?? ''}>
              {metric ?? 'value'}
            </th>
            <th scope="col">state</th>
          </tr>
        </thead>
        <tbody>
          {group.runs.map(run => (
            <tr key={run.id}>
              <td>
                <button
                  className="nbk-link"
                  title={`Show run #${run.id}`}
                  onClick={() => props.onSelectRun(run.id)}
                >
                  {run.group?.fold ?? '?'}
                </button>
              </td>
              <td>{metric ? formatMetric(heldValue(run, metric)) : '–'}</td>
              <td className={`nbk-kind nbk-status-${run.status}`}>{run.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
