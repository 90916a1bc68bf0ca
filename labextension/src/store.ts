/**
 * The panel's live data: polls the server for changed runs while the panel
 * is visible (and not at all while it is hidden), and fetches the selected
 * run's details whenever that run changes.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, requestAPI } from './request';
import {
  applyUpdate,
  EMPTY_STATE,
  RunDetail,
  RunsResponse,
  RunsState
} from './model';
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

  /** The selected run in full, once fetched. */
  get detail(): RunDetail | null {
    return this._detail;
  }

  get detailError(): string | null {
    return this._detailError;
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
    if (id === this._selected) {
      return;
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
    const selected = this._selected;
    if (selected !== null && update.runs.some(r => r.id === selected)) {
      void this._fetchDetail(selected);
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

  private _state: RunsState = EMPTY_STATE;
  private _connection: Connection = 'loading';
  private _message = '';
  private _selected: number | null = null;
  private _detail: RunDetail | null = null;
  private _detailError: string | null = null;
  private _detailRequest = 0;
  private _active = false;
  private _polling = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _changed = new Signal<this, void>(this);
}
