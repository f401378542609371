/**
 * What the Zammad double answers with, rendered the way Rails does: JSON replies, and exceptions
 * through handles_errors.rb (humanize_error for JSON, public/<status>.html for anything else, the
 * format chosen from the route's `.:format` or the Accept header).
 */
import { STATUS_CODES } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { ParsedRequest } from './zammad-request.js';
import type { ZammadSettings } from './zammad-types.js';

export interface Reply {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

/** An exception as Rails' handles_errors would render it. */
export class RailsError extends Error {
  constructor(
    readonly status: 404 | 422 | 500,
    message: string,
  ) {
    super(message);
  }
}

export const JSON_TYPE = 'application/json; charset=utf-8';
export const HTML_TYPE = 'text/html; charset=utf-8';

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Rendered like Zammad's public/<status>.html in production (no traceback). */
export function errorPage(status: number, message: string | undefined): string {
  if (status === 500) {
    return [
      '<!DOCTYPE html>',
      '<html class="dark">',
      '<meta charset="utf-8">',
      '<title>500: Something went wrong</title>',
      '<link rel="stylesheet" href="/assets/error/style.css">',
      '<body >',
      "<h1>500: We're sorry, but something went wrong.</h1>",
      '  <div class="error-image" style="background-image: url(/assets/error/error-2.svg)"></div>',
      "  <p>We're sorry, but something went wrong.</p>",
      '</body>',
      '</html>',
    ].join('\n');
  }
  const title =
    status === 422
      ? '422: Unprocessable Entity'
      : status === 404
        ? '404: Requested resource was not found'
        : `${status}: ${STATUS_CODES[status] ?? 'Error'}`;
  const h1 =
    status === 422
      ? '422: The change you wanted was rejected.'
      : status === 404
        ? '404: Requested resource was not found.'
        : title;
  return [
    '<!DOCTYPE html>',
    '<html class="dark">',
    '<meta charset="utf-8">',
    `<title>${title}</title>`,
    '<link rel="stylesheet" href="/assets/error/style.css">',
    '<body >',
    `  <h1>${h1}</h1>`,
    message !== undefined ? `  <div>${htmlEscape(message)}</div>` : '',
    '  <div class="error-image" style="background-image: url(/assets/error/error-1.svg)"></div>',
    '</body>',
    '</html>',
  ].join('\n');
}

/** humanize_error of handles_errors.rb for an anonymous (non-admin) caller. */
function humanize(message: string): { error: string; error_human?: string } {
  let human: string | undefined;
  const notNull = /null value in column "(.+?)" violates not-null constraint/i.exec(message);
  if (/(already exists|duplicate key|duplicate entry)/i.test(message)) human = 'This object already exists.';
  else if (notNull) human = `Attribute '${notNull[1] ?? ''}' required!`;
  else if (message.startsWith('No route matches')) human = message; // ActionController::RoutingError
  if (human !== undefined) return { error: human, error_human: human };
  return { error: `Error ID ${randomBytes(6).toString('base64url')}: Please contact your administrator.` };
}

export function json(status: number, body: unknown): Reply {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(body) };
}

/** Whether an exception is rendered as JSON (else as an HTML page); see ZammadSettings.acceptNegotiation. */
export function wantsJson(parsed: ParsedRequest, acceptNegotiation: ZammadSettings['acceptNegotiation']): boolean {
  if (parsed.format !== undefined) return parsed.format === 'json';
  const accept = parsed.accept;
  if (accept === undefined || accept.trim() === '') return false;
  const types = accept.split(',').map((s) => (s.split(';')[0] ?? '').trim().toLowerCase());
  if (acceptNegotiation === 'strict') return types.includes('application/json');
  // Rails: a browser-like Accept (*/* together with other types) is ignored → html
  if (types.length > 1 && types.includes('*/*')) return false;
  return types.includes('application/json') || types.includes('*/*');
}

/** respond_to_exception of handles_errors.rb */
export function renderException(
  parsed: ParsedRequest,
  err: RailsError,
  acceptNegotiation: ZammadSettings['acceptNegotiation'],
): Reply {
  const data = humanize(err.message);
  if (wantsJson(parsed, acceptNegotiation)) return json(err.status, data);
  return { status: err.status, contentType: HTML_TYPE, body: errorPage(err.status, data.error_human ?? data.error) };
}
