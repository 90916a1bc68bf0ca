/**
 * One chart of training curves: y ticks on a linear or log scale (losses
 * start on log), whole epochs on x, each run's best epoch marked (by the
 * metric's direction from the server), and a readout of every curve's value
 * at the epoch under the pointer. Used by the run details (one run) and the
 * comparison (several runs overlaid, a colour per run).
 */

import * as React from 'react';

import {
  bestPoint,
  Box,
  canLog,
  Chart,
  linePath,
  logByDefault,
  markedSeries,
  niceTicks,
  scales,
  valuesAt,
  yTicks
} from './curves';
import { Direction, formatMetric } from './model';

const BOX: Box = { width: 300, height: 132, left: 46, right: 10, top: 8, bottom: 20 };

/** Run colours (overlays) or series colours (one run): the theme's first. */
export const COLORS = [
  'var(--jp-brand-color1, #1976d2)',
  'var(--jp-warn-color1, #f57c00)',
  'var(--jp-success-color1, #388e3c)',
  'var(--jp-error-color1, #d32f2f)',
  '#8e24aa',
  '#00838f'
];

export interface ChartViewProps {
  chart: Chart;
  /** Which way each metric key improves (from the server). */
  directions: Record<string, Direction>;
  /** Colour by run (overlays) instead of by series (one run). */
  byRun: boolean;
}

export function ChartView(props: ChartViewProps): JSX.Element {
  const { chart, directions, byRun } = props;
  const [log, setLog] = React.useState(() => logByDefault(chart));
  const [hover, setHover] = React.useState<number | null>(null);
  const svg = React.useRef<SVGSVGElement>(null);
  const useLog = log && canLog(chart);
  const { x, y, epochAt } = scales(chart, BOX, useLog);
  const bottom = BOX.height - BOX.bottom;
  const color = (s: Chart['series'][number], i: number): string =>
    COLORS[(byRun ? s.run : i) % COLORS.length];
  const xs = niceTicks(chart.first, chart.last, 5, true);
  const ys = yTicks(chart, useLog);

  const onMove = (event: React.MouseEvent<SVGSVGElement>): void => {
    const node = svg.current;
    if (!node) {
      return;
    }
    const rect = node.getBoundingClientRect();
    const px = ((event.clientX - rect.left) / rect.width) * BOX.width;
    const epoch = Math.min(chart.last, Math.max(chart.first, epochAt(px)));
    setHover(epoch);
  };
  const readout = hover !== null ? valuesAt(chart, hover) : [];

  return (
    <figure className="nbk-chart">
      <div className="nbk-chart-head">
        <span className="nbk-chart-title">{chart.title}</span>
        {canLog(chart) ? (
          <label className="nbk-log-toggle">
            <input
              type="checkbox"
              checked={useLog}
              onChange={event => setLog(event.currentTarget.checked)}
            />
            log
          </label>
        ) : null}
      </div>
      <svg
        ref={svg}
        viewBox={`0 0 ${BOX.width} ${BOX.height}`}
        role="img"
        aria-label={`${chart.title} curves`}
        onMouseMove={onMove}
        onMouseLeave={() => setHover(null)}
      >
        {ys.map(v => (
          <g key={`y${v}`}>
            <line className="nbk-grid" x1={BOX.left} x2={BOX.width - BOX.right} y1={y(v)} y2={y(v)} />
            <text className="nbk-tick" x={BOX.left - 4} y={y(v) + 3} textAnchor="end">
              {formatMetric(v)}
            </text>
          </g>
        ))}
        <line className="nbk-axis" x1={BOX.left} y1={BOX.top} x2={BOX.left} y2={bottom} />
        <line className="nbk-axis" x1={BOX.left} y1={bottom} x2={BOX.width - BOX.right} y2={bottom} />
        {xs.map(e => (
          <text key={`x${e}`} className="nbk-tick" x={x(e)} y={BOX.height - 6} textAnchor="middle">
            {e}
          </text>
        ))}
        {chart.series.map((series, i) => (
          <path
            key={`${series.run}:${series.key}`}
            d={linePath(series, chart, BOX, useLog)}
            fill="none"
            stroke={color(series, i)}
            strokeWidth={1.5}
            strokeDasharray={series.validation ? '4 3' : undefined}
          />
        ))}
        {markedSeries(chart).map(series => {
          const best = bestPoint(series, directions[series.key]);
          const i = chart.series.indexOf(series);
          return best ? (
            <circle
              key={`best${series.run}:${series.key}`}
              className="nbk-best-marker"
              cx={x(best[0])}
              cy={y(best[1])}
              r={3.5}
              stroke={color(series, i)}
            >
              <title>{`best ${series.label} ${formatMetric(best[1])} at epoch ${best[0]}`}</title>
            </circle>
          ) : null;
        })}
        {hover !== null ? (
          <line className="nbk-hover" x1={x(hover)} x2={x(hover)} y1={BOX.top} y2={bottom} />
        ) : null}
      </svg>
      <div className="nbk-readout" aria-live="off">
        {hover !== null ? (
          <>
            <span className="nbk-readout-epoch">epoch {hover}</span>
            {readout.map(({ series, value }) => (
              <span key={`${series.run}:${series.key}`} className="nbk-readout-item">
                <span
                  className={`nbk-swatch${series.validation ? ' nbk-dashed' : ''}`}
                  style={{ borderColor: color(series, chart.series.indexOf(series)) }}
                />
                {series.label} {formatMetric(value)}
              </span>
            ))}
          </>
        ) : (
          <span className="nbk-muted-inline">
            ○ best epoch · hover for values
          </span>
        )}
      </div>
      {!byRun ? (
        <figcaption className="nbk-legend">
          {chart.series.map((series, i) => (
            <span key={series.key} className="nbk-legend-item">
              <span
                className={`nbk-swatch${series.validation ? ' nbk-dashed' : ''}`}
                style={{ borderColor: color(series, i) }}
              />
              {series.key}
            </span>
          ))}
        </figcaption>
      ) : null}
    </figure>
  );
}
