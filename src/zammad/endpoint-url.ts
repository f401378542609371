/**
 * What a Zammad CTI endpoint URL must look like, and its secret part: the token at its end is the
 * only thing guarding the endpoint, so it is never shown (logs, errors, status pages, metrics).
 */
import { z } from 'zod';

const REQUIRED = 'is required: the endpoint from Zammad → Admin → Integrations → CTI (generic)';

/** `https://zammad.example.com/api/v1/cti/TOKEN`. Its issues never quote the value (it holds the token). */
export const ctiUrl = z
  .string({ error: REQUIRED })
  .min(1, REQUIRED)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not a URL (expected https://zammad.example.com/api/v1/cti/TOKEN)' });
      return;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      ctx.addIssue({ code: 'custom', message: 'must be an http(s) URL' });
    }
    if (!/\/api\/v1\/cti\/[^/]+\/?$/.test(url.pathname)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must end in /api/v1/cti/<token> (copy it from Zammad → Admin → Integrations → CTI (generic))',
      });
    }
  });

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Plain http to another machine would carry the token in clear text: only with an explicit opt-in. */
export function clearTextProblem(value: string, allowHttp: boolean): string | undefined {
  const url = URL.canParse(value) ? new URL(value) : null;
  if (url?.protocol === 'http:' && !allowHttp && !isLoopback(url.hostname)) {
    return 'uses plain http:// to a host that is not loopback: the token would travel in clear text; use https:// or set ZAMMAD_ALLOW_HTTP=true';
  }
  return undefined;
}

/** The token as written in the URL and decoded (both are secrets). */
export function tokenOf(value: string): string {
  const raw = new URL(value).pathname.replace(/\/$/, '').split('/').pop() ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The endpoint with its token hidden, for logs and status pages. */
export function safeUrl(value: string): string {
  const url = new URL(value);
  return `${url.origin}${url.pathname.replace(/[^/]+\/?$/, '***')}`;
}
