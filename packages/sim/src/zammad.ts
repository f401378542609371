/**
 * Zammad double: a real HTTP server (node:http) that behaves like Zammad's CTI (generic) Push API
 * endpoint `POST /api/v1/cti/:token`, and keeps a caller log the way Zammad's `Cti::Log` does.
 *
 * Behaviour-faithful to docs/reference/zammad.md, which wins over the public API text.
 * Details checked against Zammad's source (zammad/zammad):
 *  - app/controllers/integration/cti_controller.rb: before_action check_configured (disabled →
 *    422, cti_config / inbound / outbound blank → 422), then check_token (401); replies rendered with
 *    `render json:` (always JSON, whatever the Accept header): `{}`, reject `{action:'reject',
 *    reason:'busy'}`, dial `{action:'dial', caller_id:, number:}`, invalid direction 422.
 *  - app/models/cti/driver/base.rb#process: direction_check first (nothing stored); reject_check
 *    (inbound newCall, `from` exactly equal to a blocked caller id) still calls Cti::Log.process;
 *    caller_id_rewrite (outbound newCall, routing_table `dest` with `*` → `.+?`, matched as
 *    /^dest$/, first match wins, else default_caller_id) replaces params['from'] with the chosen
 *    caller id BEFORE the log entry is stored; `number` is params[:to] as sent.
 *    push_open_ticket_screen_recipient calls `@params[:user].downcase` for an inbound answer, so a
 *    `user[]` array there raises NoMethodError (500) after the answer was stored.
 *  - app/models/cti/log.rb#process: callId || call_id; user array joined with ", "; newCall raises
 *    "call_id … already exists!" if the id is known; inbound newCall done=false, outbound done=true;
 *    answer/hangup raise "No such call_id …" for an unknown id; answer after hangup is ignored;
 *    answer sets state, start_at (again on every answer), waiting time, to_comment=user if sent,
 *    done=true, comment=cause; hangup sets done=true, then false for direction=in if (state was
 *    newCall and cause != forwarded) or to_comment == 'voicemail'; end_at, talking / waiting time;
 *    unknown event → ArgumentError.
 *  - app/controllers/application_controller/handles_errors.rb: StandardError → 500, ArgumentError
 *    and ActiveRecord::StatementInvalid → 422; respond_to json → humanize_error (messages matching
 *    /already exists|duplicate key/ → "This object already exists.", "null value in column …" →
 *    "Attribute '…' required!", anything else → "Error ID xxxxxxxx: Please contact your
 *    administrator."), any other format → public/<status>.html rendered as text/html.
 *  - spec/requests/integration/cti_spec.rb: expected replies, stored from = rewritten caller id,
 *    queue, done flags, voicemail, answer after hangup → 200.
 *  - ApplicationModel's attribute length check cuts strings to the column limit (call_id 250,
 *    from/to 100) so later lookups with the full id fail.
 *
 * The public entry; the double is split by what each part does:
 *  - zammad-types.ts: settings, options, ReceivedPost, CtiLogEntry, Fault;
 *  - zammad-server.ts: ZammadDouble, the HTTP server (lifecycle, observation, settings, faults);
 *  - zammad-request.ts: routing and parameter parsing as Rails / Rack do it;
 *  - zammad-replies.ts: JSON replies and handles_errors.rb's exception rendering (JSON or HTML);
 *  - zammad-controller.ts: CtiController filters and Cti::Driver::Base#process;
 *  - zammad-cti-log.ts: Cti::Log.process, the per-call caller log (newCall / answer / hangup);
 *  - zammad-faults.ts: the injected faults (status pages, delays, hangs, resets, huge bodies, …).
 */
export { ZammadDouble } from './zammad-server.js';
export type {
  CtiLogEntry,
  Fault,
  FaultOptions,
  OutboundRoute,
  Params,
  ReceivedPost,
  ZammadDoubleOptions,
  ZammadSettings,
} from './zammad-types.js';
