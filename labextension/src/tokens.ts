/** Ids shared by the plugin and the panel. */

export const PLUGIN_ID = 'nbkeras:runs';

export const PANEL_ID = 'nbkeras-runs';

export namespace CommandIDs {
  /** Shows the runs sidebar. */
  export const open = 'nbkeras:open-runs';
  /** Copies the selected run's spec as a `%%model` cell. */
  export const copySpec = 'nbkeras:copy-spec';
}

/** How often the visible panel asks for changes, in milliseconds. */
export const POLL_INTERVAL_MS = 700;

/** The wait after a failed request before the next one. */
export const RETRY_INTERVAL_MS = 5000;

/** The server command that enables the missing server extension. */
export const ENABLE_COMMAND = 'jupyter server extension enable nbkeras';
