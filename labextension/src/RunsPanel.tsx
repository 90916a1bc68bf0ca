/**
 * The left-sidebar panel: a filter box and a sort menu over the virtualized
 * list of models and runs, and the selected run's details below. It polls
 * only while it is visible on a visible page.
 */

import * as React from 'react';

import { Message } from '@lumino/messaging';
import { ReactWidget } from '@jupyterlab/ui-components';

import {
  buildRows,
  defaultMetric,
  metricKeys,
  RunDetail,
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

function PanelView(props: { store: RunsStore; actions: PanelActions }): JSX.Element {
  const { store, actions } = props;
  const version = useStore(store);
  const [filter, setFilter] = React.useState('');
  const [sortKey, setSortKey] = React.useState('');
  const [collapsed, setCollapsed] = React.useState<ReadonlySet<string>>(new Set());
  const runs = store.state.runs;
  const nowMs = React.useMemo(() => Date.now(), [version]);

  const keys = React.useMemo(() => metricKeys(runs.values()), [runs]);
  const sortBy: SortBy = sortKey ? { kind: 'metric', metric: sortKey } : { kind: 'newest' };
  const rows = React.useMemo(
    () => buildRows(runs.values(), { filter, sortBy, collapsed }),
    [runs, filter, sortKey, collapsed]
  );
  const metric = sortKey || defaultMetric(keys);
  const toggle = (name: string): void => {
    const next = new Set(collapsed);
    if (!next.delete(name)) {
      next.add(name);
    }
    setCollapsed(next);
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

  return (
    <div className="nbk-layout">
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
      </div>
      {store.connection === 'error' ? (
        <p className="nbk-error" role="status">
          Cannot reach the server ({store.message}); retrying…
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
        onSelect={id => store.select(id)}
        onToggle={toggle}
      />
      {store.selected !== null ? (
        <RunDetails
          runId={store.selected}
          detail={store.detail}
          error={store.detailError}
          nowMs={nowMs}
          onClose={() => store.select(null)}
          onCopySpec={actions.copySpec}
          onOpenNotebook={actions.openNotebook}
          notebookPath={actions.notebookPath}
        />
      ) : null}
    </div>
  );
}
