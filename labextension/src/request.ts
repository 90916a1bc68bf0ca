/**
 * Calls to nbkeras' server extension. `ServerConnection.makeRequest` adds
 * the Jupyter token and XSRF cookie, so the API stays authenticated.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A non-2xx answer; `status` 404 on the runs route means "not installed". */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * Requests `/nbkeras/api/<path>` (GET unless `init.method` says otherwise,
 * with `init.body` as JSON) and returns its JSON body.
 *
 * @throws ApiError with the server's message when the status is not 2xx,
 *   and ServerConnection.NetworkError when the server cannot be reached.
 */
export async function requestAPI<T>(
  path: string,
  params: Record<string, string> = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings(),
  init: { method?: 'GET' | 'DELETE' | 'PATCH'; body?: unknown } = {}
): Promise<T> {
  const query = new URLSearchParams(params).toString();
  const url =
    URLExt.join(settings.baseUrl, 'nbkeras', 'api', path) +
    (query ? `?${query}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      url,
      {
        method: init.method ?? 'GET',
        cache: 'no-store',
        ...(init.body !== undefined
          ? { body: JSON.stringify(init.body), headers: { 'Content-Type': 'application/json' } }
          : {})
      },
      settings
    );
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message =
      body !== null && typeof body === 'object' && 'message' in body
        ? String((body as { message: unknown }).message)
        : response.statusText;
    throw new ApiError(response.status, message);
  }
  return body as T;
}

/** DELETE or PATCH `/nbkeras/api/<path>` (the token travels as for GETs). */
export function changeAPI<T>(
  method: 'DELETE' | 'PATCH',
  path: string,
  body?: unknown
): Promise<T> {
  return requestAPI<T>(path, {}, ServerConnection.makeSettings(), { method, body });
}
