/**
 * How the Zammad double reads a request the way Rails / Rack would: the route
 * `/api/v1/cti/:token(.:format)`, the query and the body (form or JSON) merged into params
 * (`user[]` repeated → an array), and the small Ruby-like helpers for reading those params.
 */
import type { IncomingMessage } from 'node:http';
import type { Params } from './zammad-types.js';

export const ROUTE_PREFIX = '/api/v1/cti/';
export const MAX_BODY = 1024 * 1024;

export interface ParsedRequest {
  method: string;
  pathname: string;
  token: string;
  /** `.:format` suffix of the route, if any */
  format: string | undefined;
  routed: boolean;
  contentType: string;
  accept: string | undefined;
  params: Params;
  parseError: boolean;
}

/** Ruby/ActiveSupport `present?` for the values the double handles. */
export function present(value: string | undefined | null): value is string {
  return value !== undefined && value !== null && value.trim() !== '';
}

export function scalar(params: Params, key: string): string | undefined {
  const v = params[key];
  return typeof v === 'string' ? v : undefined;
}

function parseForm(text: string, into: Params): void {
  for (const [rawKey, value] of new URLSearchParams(text)) {
    if (rawKey.endsWith('[]')) {
      const key = rawKey.slice(0, -2);
      const prev = into[key];
      into[key] = Array.isArray(prev) ? [...prev, value] : [value];
    } else {
      into[rawKey] = value; // Rack: last one wins
    }
  }
}

function jsonValueToParam(v: unknown): string | string[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  return JSON.stringify(v);
}

/** The request as Rails would see it after routing and parameter parsing. */
export function parseRequest(req: IncomingMessage, raw: string): ParsedRequest {
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://zammad.invalid');
  const contentTypeHeader = req.headers['content-type'] ?? '';
  const mediaType = (contentTypeHeader.split(';')[0] ?? '').trim().toLowerCase();
  const acceptHeader = req.headers.accept;

  // route /api/v1/cti/:token(.:format): a segment without '/', '.'
  let token = '';
  let format: string | undefined;
  let routed = false;
  if (url.pathname.startsWith(ROUTE_PREFIX)) {
    const rest = url.pathname.slice(ROUTE_PREFIX.length);
    const m = /^([^/.]+)(?:\.([^/.]+))?$/.exec(rest);
    if (m && m[1] !== undefined) {
      try {
        token = decodeURIComponent(m[1]);
        format = m[2];
        routed = true;
      } catch {
        routed = false;
      }
    }
  }

  const params: Params = {};
  parseForm(url.search, params);
  let parseError = false;
  if (mediaType === 'application/json') {
    if (raw.trim() !== '') {
      try {
        const body: unknown = JSON.parse(raw);
        if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
          for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
            const p = jsonValueToParam(v);
            if (p !== undefined) params[k] = p;
          }
        } else {
          const p = jsonValueToParam(body);
          if (p !== undefined) params['_json'] = p; // Rails wraps non-hash JSON bodies
        }
      } catch {
        parseError = true;
      }
    }
  } else if (mediaType === '' || mediaType === 'application/x-www-form-urlencoded') {
    // Rack parses a POST without Content-Type as a form
    parseForm(raw, params);
  }
  // other media types (text/plain, multipart, …): body ignored by the double

  return {
    method,
    pathname: url.pathname,
    token,
    format,
    routed,
    contentType: contentTypeHeader,
    accept: Array.isArray(acceptHeader) ? acceptHeader.join(', ') : acceptHeader,
    params,
    parseError,
  };
}
