/**
 * The panel's live data: polls the server for changed runs while the panel
 * is visible (and not at all while it is hidden), and fetches the selected
 * run's details whenever that run changes. A selected study or
 * cross-validation group needs no fetch of its own (the summaries carry
 * what it shows) except, once per model version, its search spaces.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, changeAPI, requestAPI } from './request';
import {
  applyUpdate,
  EMPTY_STATE,
  keepExisting,
  RunDetail,
  RunsResponse,
  RunsState,
  toggleCompare
} from './model';
import type { SpaceInfo } from './parcoords';
import { POLL_INTERVAL_MS, RETRY_INTERVAL_MS } from './tokens';

/** Whether the server answers: `missing` when its extension is not enabled. */
export type Connection = 'loading' | 'ok' | 'missing' | 'error';

export class RunsStore {
  /** Emitted after anything shown changed (runs, connection, details). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get state(): RunsState {
    return this._state;
  }

  get connection(): Connection {
    return this._connection;
  }

  /** The last error's message, for the `error` connection. */
  get message(): string {
    return this._message;
  }

  get selected(): number | null {
    return this._selected;
  }

  /** The selected study or cross-validation group (`groupKey`), or null. */
  get selectedGroup(): string | null {
    return this._selectedGroup;
  }

  /** Selects a group (or none); a selected run is deselected. */
  selectGroup(key: string | null): void {
    if (key === this._selectedGroup && (key === null || this._selected === null)) {
      return;
    }
    this._selectedGroup = key;
    if (key !== null) {
      this._selected = null;
      this._detail = null;
      this._detailError = null;
    }
    this._changed.emit();
  }

  /**
   * The search spaces of a model version: undefined until fetched (the
   * first call fetches them), null when they cannot be had.
   */
  spaces(versionId: number): SpaceInfo[] | null | undefined {
    if (!this._spaces.has(versionId)) {
      this._spaces.set(versionId, undefined);
      void this._fetchSpaces(versionId);
    }
    return this._spaces.get(versionId);
  }

  private async _fetchSpaces(versionId: number): Promise<void> {
    let spaces: SpaceInfo[] | null = null;
    try {
      spaces = (await requestAPI<{ spaces: SpaceInfo[] }>(`versions/${versionId}/spaces`)).spaces;
    } catch {
      spaces = null; // drawn from the values alone
    }
    this._spaces.set(versionId, spaces);
    this._changed.emit();
  }

  /** The selected run in full, once fetched. */
  get detail(): RunDetail | null {
    return this._detail;
  }

  get detailError(): string | null {
    return this._detailError;
  }

  /** The runs chosen for comparison, in the order chosen. */
  get compared(): readonly number[] {
    return this._compared;
  }

  /** The fetched details of compared runs, by id (missing while loading). */
  get comparedDetails(): ReadonlyMap<number, RunDetail> {
    return this._comparedDetails;
  }

  /** Adds a run to the comparison or takes it out. */
  toggleCompare(id: number): void {
    this.setCompared(toggleCompare(this._compared, id));
  }

  /** Compares exactly these runs (none: the comparison closes). */
  setCompared(ids: readonly number[]): void {
    this._compared = [...ids];
    for (const id of [...this._comparedDetails.keys()]) {
      if (!ids.includes(id)) {
        this._comparedDetails.delete(id);
      }
    }
    this._changed.emit();
    for (const id of ids) {
      if (!this._comparedDetails.has(id)) {
        void this._fetchCompared(id);
      }
    }
  }

  /**
   * Deletes a run on the server; the list drops it at once (the next poll
   * confirms through its `deleted` ids).
   */
  async deleteRun(id: number): Promise<void> {
    await changeAPI('DELETE', `runs/${id}`);
    this._forget([id]);
  }

  /** Deletes a model version and its runs on the server. */
  async deleteVersion(versionId: number): Promise<number[]> {
    const answer = await changeAPI<{ runs: number[] }>('DELETE', `versions/${versionId}`);
    this._forget(answer.runs);
    return answer.runs;
  }

  /** Stars (pins) or unstars a run. */
  async setStarred(id: number, starred: boolean): Promise<void> {
    await changeAPI('PATCH', `runs/${id}`, { starred });
    const run = this._state.runs.get(id);
    if (run) {
      const runs = new Map(this._state.runs);
      runs.set(id, { ...run, starred });
      this._state = { ...this._state, runs };
      if (this._detail && this._detail.id === id) {
        this._detail = { ...this._detail, starred };
      }
      this._changed.emit();
    }
  }

  private _forget(ids: number[]): void {
    if (ids.length === 0) {
      return;
    }
    const runs = new Map(this._state.runs);
    for (const id of ids) {
      runs.delete(id);
      this._comparedDetails.delete(id);
    }
    this._state = { ...this._state, runs };
    this._compared = keepExisting(this._compared, runs);
    if (this._selected !== null && ids.includes(this._selected)) {
      this._selected = null;
      this._detail = null;
      this._detailError = null;
    }
    this._changed.emit();
  }

  /** Starts polling (at once) or stops it; stopped, the store does no work. */
  setActive(active: boolean): void {
    if (active === this._active) {
      return;
    }
    this._active = active;
    if (active) {
      this._schedule(0);
    } else if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** Polls again now, e.g. after the user enabled the server extension. */
  retry(): void {
    this._connection = 'loading';
    this._changed.emit();
    if (this._active) {
      this._schedule(0);
    }
  }

  /** Selects a run (or none) and fetches its details. */
  select(id: number | null): void {
    if (id === this._selected && (id === null || this._selectedGroup === null)) {
      return;
    }
    if (id !== null) {
      this._selectedGroup = null;
    }
    this._selected = id;
    this._detail = null;
    this._detailError = null;
    this._changed.emit();
    if (id !== null) {
      void this._fetchDetail(id);
    }
  }

  dispose(): void {
    this.setActive(false);
    Signal.clearData(this);
  }

  private _schedule(delay: number): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      void this._poll();
    }, delay);
  }

  private async _poll(): Promise<void> {
    if (this._polling) {
      return;
    }
    this._polling = true;
    let delay = POLL_INTERVAL_MS;
    try {
      const full = this._state.cursor === null;
      const params: Record<string, string> = full
        ? {}
        : { since: String(this._state.cursor) };
      const update = await requestAPI<RunsResponse>('runs', params);
      if (!full && update.cursor < (this._state.cursor ?? 0)) {
        // The registry was replaced (a new NBKERAS_HOME): start over.
        this._state = EMPTY_STATE;
        delay = 0;
      } else {
        this._receive(update, full);
      }
    } catch (error) {
      const missing = error instanceof ApiError && error.status === 404;
      const message = error instanceof Error ? error.message : String(error);
      if (this._connection !== (missing ? 'missing' : 'error') || this._message !== message) {
        this._connection = missing ? 'missing' : 'error';
        this._message = message;
        this._changed.emit();
      }
      delay = RETRY_INTERVAL_MS;
    } finally {
      this._polling = false;
    }
    if (this._active) {
      this._schedule(delay);
    }
  }

  private _receive(update: RunsResponse, full: boolean): void {
    const before = this._state;
    this._state = applyUpdate(before, update, full);
    const wasOk = this._connection === 'ok';
    this._connection = 'ok';
    const running = update.runs.some(r => r.status === 'running') ||
      [...this._state.runs.values()].some(r => r.status === 'running');
    // A running run's duration grows even when nothing else changes.
    if (this._state !== before || !wasOk || running) {
      this._changed.emit();
    }
    if (update.deleted && update.deleted.length) {
      this._forget(update.deleted.filter(id => id === this._selected ||
        this._compared.includes(id)));
    }
    const selected = this._selected;
    if (selected !== null && update.runs.some(r => r.id === selected)) {
      void this._fetchDetail(selected);
    }
    for (const id of this._compared) {
      if (update.runs.some(r => r.id === id)) {
        void this._fetchCompared(id);
      }
    }
  }

  private async _fetchCompared(id: number): Promise<void> {
    try {
      const detail = await requestAPI<RunDetail>(`runs/${id}`);
      if (this._compared.includes(id)) {
        this._comparedDetails.set(id, detail);
        this._changed.emit();
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this._forget([id]);
      }
    }
  }

  private async _fetchDetail(id: number): Promise<void> {
    // Only the latest request may update the details: answers can cross.
    const request = ++this._detailRequest;
    const current = (): boolean =>
      this._selected === id && request === this._detailRequest;
    try {
      const detail = await requestAPI<RunDetail>(`runs/${id}`);
      if (current()) {
        this._detail = detail;
        this._detailError = null;
        this._changed.emit();
      }
    } catch (error) {
      if (current()) {
        this._detailError =
          error instanceof ApiError && error.status === 404
            ? `Run ${id} is no longer in the registry.`
            : `Could not load run ${id}: ${error instanceof Error ? error.message : String(error)}`;
        this._changed.emit();
      }
    }
  }

  private _compared: number[] = [];
  private _comparedDetails = new Map<number, RunDetail>();
  private _state: RunsState = EMPTY_STATE;
  private _connection: Connection = 'loading';
  private _message = '';
  private _selected: number | null = null;
  private _selectedGroup: string | null = null;
  private _spaces = new Map<number, SpaceInfo[] | null | undefined>();
  private _detail: RunDetail | null = null;
  private _detailError: string | null = null;
  private _detailRequest = 0;
  private _active = false;
  private _polling = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _changed = new Signal<this, void>(this);
}
