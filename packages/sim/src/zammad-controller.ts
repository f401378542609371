/**
 * The Rails side of one request to the Zammad double: routing, CtiController's before_actions
 * (check_configured, check_token), CtiController#event and Cti::Driver::Base#process
 * (direction_check, reject_check, caller_id_rewrite, push_open_ticket_screen_recipient), with
 * the caller log kept by CtiLog.
 */
import type { CtiLog } from './zammad-cti-log.js';
import { errorPage, HTML_TYPE, json, RailsError, renderException, wantsJson, type Reply } from './zammad-replies.js';
import { present, scalar, type ParsedRequest } from './zammad-request.js';
import type { Params, ZammadSettings } from './zammad-types.js';

/** The whole Rails request: routing, controller filters, driver, model. */
export function handleRequest(parsed: ParsedRequest, s: ZammadSettings, log: CtiLog): Reply {
  if (!parsed.routed || parsed.method !== 'POST') {
    return renderException(
      parsed,
      new RailsError(404, `No route matches [${parsed.method}] ${parsed.pathname}`),
      s.acceptNegotiation,
    );
  }
  // before_action :check_configured
  if (!s.enabled) return json(422, { error: 'Feature is disabled, please contact your administrator!' });
  if (!s.configured) return json(422, { error: 'Feature not configured, please contact your admin!' });
  // params are parsed when first read (check_token): a broken JSON body fails here
  if (parsed.parseError) {
    const error = 'Error occurred while parsing request parameters';
    return wantsJson(parsed, s.acceptNegotiation)
      ? json(400, { error })
      : { status: 400, contentType: HTML_TYPE, body: errorPage(400, error) };
  }
  // before_action :check_token
  if (parsed.token !== s.token) return json(401, { error: 'Invalid token, please contact your admin!' });
  try {
    return ctiEvent(parsed.params, s, log);
  } catch (err) {
    if (err instanceof RailsError) return renderException(parsed, err, s.acceptNegotiation);
    // anything else (e.g. a routing_table dest that is no valid regexp) → StandardError → 500
    return renderException(
      parsed,
      new RailsError(500, err instanceof Error ? err.message : String(err)),
      s.acceptNegotiation,
    );
  }
}

/** CtiController#event + Cti::Driver::Base#process */
function ctiEvent(params: Params, s: ZammadSettings, log: CtiLog): Reply {
  const direction = scalar(params, 'direction');
  const event = scalar(params, 'event');
  if (direction !== 'in' && direction !== 'out') return json(422, { error: 'Invalid direction!' });

  // reject_check: inbound newCall, from exactly equal to a blocked caller id
  const from = scalar(params, 'from');
  if (direction === 'in' && event === 'newCall' && from !== undefined && s.blockedNumbers.includes(from)) {
    log.process(params, direction, event, undefined);
    return json(200, { action: 'reject', reason: 'busy' });
  }

  // caller_id_rewrite: outbound newCall
  const to = scalar(params, 'to');
  if (direction === 'out' && event === 'newCall' && present(to)) {
    let callerId: string | undefined;
    for (const row of s.outboundRoutes) {
      const dest = row.dest.replace(/\*/g, '.+?');
      if (new RegExp(`^${dest}$`, 'm').test(to)) {
        callerId = row.callerId;
        break;
      }
    }
    if (callerId === undefined && present(s.defaultCallerId)) callerId = s.defaultCallerId;
    if (callerId !== undefined) {
      log.process(params, direction, event, callerId);
      return json(200, { action: 'dial', [s.dialKey]: callerId, number: to });
    }
  }

  const outcome = log.process(params, direction, event, undefined);
  // push_open_ticket_screen_recipient: `@params[:user].downcase` on an Array → NoMethodError
  const user = params['user'];
  if (outcome === 'applied' && event === 'answer' && direction === 'in' && Array.isArray(user) && user.length > 0) {
    throw new RailsError(500, "undefined method `downcase' for an instance of Array");
  }
  return json(200, {});
}
