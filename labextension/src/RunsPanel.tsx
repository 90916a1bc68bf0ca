/**
 * The left-sidebar panel: a filter box and a sort menu over the virtualized
 * list of models and runs, and the selected run's details (or the selected
 * study or cross-validation, or the comparison) below. It polls only while
 * it is visible on a visible page.
 */

import * as React from 'react';

import { Message } from '@lumino/messaging';
import { ReactWidget } from '@jupyterlab/ui-components';

import { CompareView } from './CompareView';
import { findGroup } from './groups';
import { CvView, StudyView } from './GroupView';
import {
  buildRows,
  commonValue,
  defaultMetric,
  metricKeys,
  RunDetail,
  runLabel,
  RunSummary,
  SortBy
} from './model';
import { RunDetails } from './RunDetails';
import { RunList } from './RunList';
import { RunsStore } from './store';
import { ENABLE_COMMAND } from './tokens';

/** What the panel asks of the application. */
export interface PanelActions {
  copySpec: (detail: RunDetail) => Promise<void>;
  /** Opens a notebook given by its path relative to the server root. */
  openNotebook: (path: string) => void;
  /** A recorded notebook path as JupyterLab knows it (server-relative). */
  notebookPath: (path: string) => string;
  /** Asks the user to confirm a destructive action; true to go ahead. */
  confirm: (title: string, body: string, accept: string) => Promise<boolean>;
}

export class RunsPanel extends ReactWidget {
  constructor(
    readonly store: RunsStore,
    private readonly _actions: PanelActions
  ) {
    super();
    this.addClass('nbk-panel');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Keras runs');
    this._onVisibility = () => this._updateActive();
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    document.removeEventListener('visibilitychange', this._onVisibility);
    this.store.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._updateActive();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._updateActive();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._updateActive();
  }

  protected onBeforeDetach(msg: Message): void {
    this.store.setActive(false);
    super.onBeforeDetach(msg);
  }

  private _updateActive(): void {
    this.store.setActive(this.isVisible && document.visibilityState !== 'hidden');
  }

  render(): JSX.Element {
    return <PanelView store={this.store} actions={this._actions} />;
  }

  private _onVisibility: () => void;
}

function useStore(store: RunsStore): number {
  const [version, setVersion] = React.useState(0);
  React.useEffect(() => {
    const bump = (): void => setVersion(v => v + 1);
    store.changed.connect(bump);
    return () => {
      store.changed.disconnect(bump);
    };
  }, [store]);
  return version;
}

/** The spaces of a study's newest model version (undefined while they load). */
function studySpaces(
  store: RunsStore,
  runs: readonly RunSummary[]
): ReturnType<RunsStore['spaces']> {
  const newest = [...runs].sort((a, b) => b.id - a.id).find(r => r.version_id !== null);
  return newest ? store.spaces(newest.version_id as number) : null;
}

/** The bottom pane's height limits, in pixels. */
const PANE_MIN = 60;
const LIST_MIN = 110;

function PanelView(props: { store: RunsStore; actions: PanelActions }): JSX.Element {
  const { store, actions } = props;
  const version = useStore(store);
  const [filter, setFilter] = React.useState('');
  const [sortKey, setSortKey] = React.useState('');
  const [collapsed, setCollapsed] = React.useState<ReadonlySet<string>>(new Set());
  const [expanded, setExpanded] = React.useState<ReadonlySet<string>>(new Set());
  const [paneHeight, setPaneHeight] = React.useState<number | null>(null);
  const [paneFolded, setPaneFolded] = React.useState(false);
  const [problem, setProblem] = React.useState<string | null>(null);
  const layout = React.useRef<HTMLDivElement>(null);
  const runs = store.state.runs;
  const nowMs = React.useMemo(() => Date.now(), [version]);

  const keys = React.useMemo(() => metricKeys(runs.values()), [runs]);
  const sortBy: SortBy = sortKey ? { kind: 'metric', metric: sortKey } : { kind: 'newest' };
  const metric = sortKey || defaultMetric(keys);
  const rows = React.useMemo(
    () => buildRows(runs.values(), { filter, sortBy, collapsed, expanded, metric }),
    [runs, filter, sortKey, collapsed, expanded, metric]
  );
  const common = React.useMemo(
    () => ({
      device: commonValue(runs.values(), r => r.device),
      precision: commonValue(runs.values(), r => r.precision ?? 'float32')
    }),
    [runs]
  );
  const toggle = (name: string): void => {
    const next = new Set(collapsed);
    if (!next.delete(name)) {
      next.add(name);
    }
    setCollapsed(next);
  };
  const toggleGroup = (key: string): void => {
    const next = new Set(expanded);
    if (!next.delete(key)) {
      next.add(key);
    }
    setExpanded(next);
  };
  const selectedGroup = React.useMemo(
    () =>
      store.selectedGroup === null ? null : findGroup(runs.values(), store.selectedGroup, metric),
    [runs, store.selectedGroup, metric]
  );
  const attempt = (what: string, action: () => Promise<unknown>): void => {
    setProblem(null);
    action().catch(error =>
      setProblem(`Could not ${what}: ${error instanceof Error ? error.message : String(error)}`)
    );
  };
  const star = (id: number, starred: boolean): void =>
    attempt(starred ? 'pin the run' : 'unpin the run', () => store.setStarred(id, starred));
  const deleteRun = (detail: RunDetail): void =>
    attempt('delete the run', async () => {
      const epochs = detail.history.length;
      const ok = await actions.confirm(
        `Delete run #${detail.id}?`,
        `Run ${runLabel(detail)} and its ${epochs} ${epochs === 1 ? 'epoch' : 'epochs'} ` +
          'will be removed from the registry. This cannot be undone.',
        'Delete'
      );
      if (ok) {
        await store.deleteRun(detail.id);
      }
    });
  const deleteVersion = (detail: RunDetail): void =>
    attempt('delete the model version', async () => {
      const count = [...runs.values()].filter(r => r.version_id === detail.version_id).length;
      const ok = await actions.confirm(
        `Delete this version of ${detail.model}?`,
        `The model version of run #${detail.id} and its ${count} ` +
          `${count === 1 ? 'run' : 'runs'} will be removed from the registry. ` +
          'This cannot be undone.',
        'Delete version'
      );
      if (ok && detail.version_id !== null) {
        await store.deleteVersion(detail.version_id);
      }
    });

  const startResize = (event: React.PointerEvent<HTMLDivElement>): void => {
    const node = layout.current;
    if (!node) {
      return;
    }
    event.preventDefault();
    const handle = event.currentTarget;
    handle.setPointerCapture(event.pointerId);
    const move = (e: PointerEvent): void => {
      const rect = node.getBoundingClientRect();
      const h = rect.bottom - e.clientY;
      setPaneHeight(Math.max(PANE_MIN, Math.min(h, rect.height - LIST_MIN)));
      setPaneFolded(false);
    };
    const up = (): void => {
      handle.removeEventListener('pointermove', move);
      handle.removeEventListener('pointerup', up);
    };
    handle.addEventListener('pointermove', move);
    handle.addEventListener('pointerup', up);
  };
  const nudge = (event: React.KeyboardEvent<HTMLDivElement>): void => {
    const node = layout.current;
    if (!node || (event.key !== 'ArrowUp' && event.key !== 'ArrowDown')) {
      return;
    }
    event.preventDefault();
    const rect = node.getBoundingClientRect();
    const now = paneHeight ?? rect.height * 0.45;
    const next = now + (event.key === 'ArrowUp' ? 24 : -24);
    setPaneHeight(Math.max(PANE_MIN, Math.min(next, rect.height - LIST_MIN)));
  };

  if (store.connection === 'missing') {
    return (
      <div className="nbk-message" role="alert">
        <h2>The nbkeras server extension is not enabled</h2>
        <p>The sidebar reads runs through Jupyter&apos;s server. Enable it, then restart Jupyter:</p>
        <pre>{ENABLE_COMMAND}</pre>
        <button className="nbk-button" onClick={() => store.retry()}>
          Retry
        </button>
      </div>
    );
  }

  const compared = store.compared
    .map(id => runs.get(id))
    .filter((r): r is RunSummary => r !== undefined);
  const mode =
    compared.length >= 2
      ? 'compare'
      : selectedGroup !== null
        ? 'group'
        : store.selected !== null
          ? 'details'
          : null;
  const detail = store.detail;
  const paneTitle =
    mode === 'compare'
      ? `Comparing ${compared.length} runs`
      : mode === 'group' && selectedGroup
        ? selectedGroup.kind === 'study'
          ? `${selectedGroup.model} · study ${selectedGroup.name}`
          : `${selectedGroup.model} · ${selectedGroup.folds}-fold cross-validation`
        : detail
          ? `${detail.model} · run #${detail.id}`
          : `Run #${store.selected}`;
  const paneLabel =
    mode === 'compare'
      ? 'Run comparison'
      : mode === 'group'
        ? selectedGroup?.kind === 'study'
          ? 'Study'
          : 'Cross-validation'
        : 'Run details';
  const closePane = (): void => {
    if (mode === 'compare') {
      store.setCompared([]);
    } else if (mode === 'group') {
      store.selectGroup(null);
    } else {
      store.select(null);
    }
  };

  return (
    <div className="nbk-layout" ref={layout}>
      <div className="nbk-toolbar">
        <h2 className="nbk-heading">Keras runs</h2>
        <input
          type="search"
          className="nbk-filter"
          placeholder="Filter by model name"
          aria-label="Filter by model name"
          value={filter}
          onChange={event => setFilter(event.currentTarget.value)}
        />
        <select
          className="nbk-sort"
          aria-label="Sort by"
          value={sortKey}
          onChange={event => setSortKey(event.currentTarget.value)}
        >
          <option value="">Newest first</option>
          {keys.map(key => (
            <option key={key} value={key}>
              Best {key}
            </option>
          ))}
        </select>
        {metric !== null && runs.size > 0 ? (
          <p
            className="nbk-caption"
            title={`Each run shows ${metric}: its result (the value of the weights its model holds: the epoch early stopping kept, else the last), then the best value @ its epoch`}
          >
            <span className="nbk-metric-key">{metric}</span>: result · best @epoch
          </p>
        ) : null}
        {store.compared.length === 1 ? (
          <p className="nbk-caption">Tick another run to compare.</p>
        ) : null}
      </div>
      {store.connection === 'error' ? (
        <p className="nbk-error" role="status">
          Cannot reach the server ({store.message}); retrying…
        </p>
      ) : null}
      {problem ? (
        <p className="nbk-error" role="alert">
          {problem}
        </p>
      ) : null}
      {store.connection === 'loading' && runs.size === 0 ? (
        <p className="nbk-muted">Loading runs…</p>
      ) : null}
      {store.connection === 'ok' && runs.size === 0 ? (
        <div className="nbk-message">
          <p>No runs yet. Train a model in a notebook:</p>
          <pre>{'%load_ext nbkeras\n%%model NAME\n…\n%fit NAME x y --epochs 5'}</pre>
        </div>
      ) : null}
      {runs.size > 0 && rows.length === 0 ? (
        <p className="nbk-muted">No model name contains “{filter}”.</p>
      ) : null}
      <RunList
        rows={rows}
        metric={metric}
        selected={store.selected}
        nowMs={nowMs}
        compared={store.compared}
        common={common}
        onSelect={id => store.select(id)}
        onToggle={toggle}
        selectedGroup={store.selectedGroup}
        onSelectGroup={key => store.selectGroup(key)}
        onToggleGroup={toggleGroup}
        onToggleCompare={id => store.toggleCompare(id)}
        onStar={star}
      />
      {mode !== null ? (
        <>
          <div
            className="nbk-handle"
            role="separator"
            aria-orientation="horizontal"
            aria-label="Resize the details pane"
            tabIndex={0}
            onPointerDown={startResize}
            onKeyDown={nudge}
            onDoubleClick={() => setPaneFolded(!paneFolded)}
          />
          <section
            className={`nbk-pane${paneFolded ? ' nbk-folded' : ''}`}
            aria-label={paneLabel}
            style={!paneFolded && paneHeight !== null ? { height: paneHeight } : undefined}
          >
            <header className="nbk-details-header">
              <button
                className="nbk-icon-button nbk-fold"
                aria-expanded={!paneFolded}
                aria-label={paneFolded ? 'Expand the pane' : 'Collapse the pane'}
                onClick={() => setPaneFolded(!paneFolded)}
              >
                {paneFolded ? '▸' : '▾'}
              </button>
              <h3 className="nbk-details-title" title={paneTitle}>
                {paneTitle}
              </h3>
              {mode === 'details' && detail ? (
                <button
                  className={`nbk-star${detail.starred ? ' nbk-starred' : ''}`}
                  aria-label={`${detail.starred ? 'Unpin' : 'Pin'} this run`}
                  aria-pressed={!!detail.starred}
                  onClick={() => star(detail.id, !detail.starred)}
                >
                  {detail.starred ? '★' : '☆'}
                </button>
              ) : null}
              <button
                className="nbk-icon-button"
                aria-label={
                  mode === 'compare'
                    ? 'Close the comparison'
                    : mode === 'group'
                      ? `Close the ${paneLabel.toLowerCase()}`
                      : 'Close run details'
                }
                onClick={closePane}
              >
                ✕
              </button>
            </header>
            {paneFolded ? null : mode === 'compare' ? (
              <CompareView
                runs={compared}
                details={store.comparedDetails}
                onRemove={id => store.toggleCompare(id)}
              />
            ) : mode === 'group' && selectedGroup?.kind === 'study' ? (
              <StudyView
                group={selectedGroup}
                spaces={studySpaces(store, selectedGroup.runs)}
                onSelectRun={id => store.select(id)}
              />
            ) : mode === 'group' && selectedGroup?.kind === 'cv' ? (
              <CvView group={selectedGroup} onSelectRun={id => store.select(id)} />
            ) : (
              <RunDetails
                runId={store.selected as number}
                detail={detail}
                error={store.detailError}
                nowMs={nowMs}
                onCopySpec={actions.copySpec}
                onOpenNotebook={actions.openNotebook}
                notebookPath={actions.notebookPath}
                onStar={star}
                onDeleteRun={deleteRun}
                onDeleteVersion={deleteVersion}
              />
            )}
          </section>
        </>
      ) : null}
    </div>
  );
}
