/**
 * `freeswitch-zammad-cti simulate`: one complete scripted call to the configured Zammad, sent the
 * way the adapter sends it — the correct replacement for the curl lines of Zammad's API text:
 * form-encoded, `Accept: application/json`, `direction` on every event, `user[]` on newCall and a
 * single `user` on answer, newCall → (answer) → hangup in order, each after the previous reply.
 *
 * It does create a call in Zammad's caller log (that is its purpose); use `check` for a test
 * without side effects.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../process/config.js';
import type { AnswerPost, CtiPost, HangupPost, NewCallPost, Decision } from '../call/flow.js';
import type { Direction } from '../call/facts.js';
import { toE164Digits, safeCallerId, WITHHELD, type NumberRules } from '../call/numbers.js';
import type { ZammadCause } from '../call/causes.js';
import type { HttpOutcome, ZammadClient } from '../zammad/client.js';
import { formBody } from '../zammad/form.js';
import { verdictOf } from '../zammad/verdict.js';
import { decisionFromReply } from '../zammad/replies.js';
import { clientFor, configOrExit, endpointsOrExit, endpointsScrubber, oneLine } from './check.js';
import { DEFAULT_ENDPOINT } from '../zammad/endpoints-file.js';

export const OUTCOMES = [
  'answered',
  'busy',
  'cancel',
  'noAnswer',
  'congestion',
  'notFound',
  'forwarded',
  'rejected',
] as const;
export type SimOutcome = (typeof OUTCOMES)[number];

const MAX_TALK_MS = 3_600_000;
const MAX_CALL_ID = 250;

export const SIMULATE_USAGE = [
  'Usage: freeswitch-zammad-cti simulate [options]',
  '',
  'Sends one complete call to the configured Zammad (ZAMMAD_CTI_URL, or --endpoint) exactly the way the adapter',
  "does: newCall → (answer) → hangup, waiting for each reply. The call appears in Zammad's caller log.",
  '',
  'Options:',
  '  --direction in|out        call direction (default in)',
  '  --from NUMBER             calling number, or "anonymous" (default 493055571600 in, 491711234567890 out)',
  '  --to NUMBER               called number (default 491711234567890 in, 493055571600 out)',
  '                            numbers are normalised like the adapter does (DEFAULT_COUNTRY_CODE, ' +
    'EXTENSION_MAX_DIGITS)',
  '  --user NAME               user(s) involved, repeatable: newCall user[]',
  '  --answered-by NAME        who answered (inbound only): answer user (default: the only --user, ' +
    'else the answering number)',
  '  --answering-number N      the number that answered (default: --to)',
  `  --outcome OUTCOME         ${OUTCOMES.join('|')} (default answered)`,
  '                            answered: newCall, answer, hangup normalClearing; rejected: expects Zammad to',
  "                            reject the caller (inbound, --from on Zammad's block list); others: newCall, " +
    'hangup with that cause',
  '  --call-id ID              call id (default sim-<random>)',
  '  --endpoint NAME           which endpoint of ZAMMAD_ENDPOINTS_FILE (default: ZAMMAD_CTI_URL, or the only one)',
  '  --talk-ms MS              wait between answer and hangup (default 0)',
  '  -h, --help                this text',
  '',
  'Exit codes: 0 Zammad took every event as expected, 1 it did not, 2 usage or configuration error.',
].join('\n');

const DEFAULTS: Record<Direction, { from: string; to: string }> = {
  in: { from: '493055571600', to: '491711234567890' },
  out: { from: '491711234567890', to: '493055571600' },
};

/** How Zammad's caller log shows a hangup cause. */
const CAUSE_SHOWN: Record<ZammadCause, string> = {
  normalClearing: 'no remark',
  busy: '"busy"',
  cancel: '"not reached"',
  noAnswer: '"not reached"',
  congestion: '"not reached"',
  notFound: '"does not exist"',
  forwarded: 'forwarded',
};

interface Plan {
  direction: Direction;
  from: string;
  to: string;
  users: string[];
  answeredBy: string | undefined;
  answeringNumber: string | undefined;
  outcome: SimOutcome;
  callId: string;
  talkMs: number;
}

class UsageError extends Error {}

function parse(argv: string[], rules: NumberRules, notes: string[]): Plan | 'help' {
  // What parseArgs gives for the options below (strict: a string, or strings where `multiple`).
  let values: {
    direction?: string;
    from?: string;
    to?: string;
    user?: string[];
    'answered-by'?: string;
    'answering-number'?: string;
    outcome?: string;
    'call-id'?: string;
    'talk-ms'?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        direction: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        user: { type: 'string', multiple: true },
        'answered-by': { type: 'string' },
        'answering-number': { type: 'string' },
        outcome: { type: 'string' },
        'call-id': { type: 'string' },
        'talk-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) return 'help';

  const direction = values.direction ?? 'in';
  if (direction !== 'in' && direction !== 'out')
    throw new UsageError(`--direction must be "in" or "out" (got "${direction}")`);

  const outcome = values.outcome ?? 'answered';
  if (!(OUTCOMES as readonly string[]).includes(outcome))
    throw new UsageError(`--outcome must be one of ${OUTCOMES.join(', ')} (got "${outcome}")`);
  const simOutcome = outcome as SimOutcome;
  if (simOutcome === 'rejected' && direction !== 'in')
    throw new UsageError(
      '--outcome rejected needs --direction in: Zammad rejects only inbound callers (the adapter bridges an ' +
        'outbound call whatever the reply)',
    );

  const from = number('--from', values.from ?? DEFAULTS[direction].from, rules, true, notes);
  const to = number('--to', values.to ?? DEFAULTS[direction].to, rules, false, notes);

  const users = (values.user ?? []).map((u) => u.trim());
  if (users.some((u) => u === '')) throw new UsageError('--user must not be empty');

  const answeredBy = values['answered-by']?.trim();
  if (answeredBy === '') throw new UsageError('--answered-by must not be empty');
  if (answeredBy !== undefined && direction === 'out')
    throw new UsageError(
      '--answered-by is for inbound calls only: Zammad takes `user` on answer only for direction in',
    );

  const rawAnswering = values['answering-number'];
  const answeringNumber =
    rawAnswering !== undefined ? number('--answering-number', rawAnswering, rules, false, notes) : undefined;
  if (simOutcome !== 'answered') {
    if (answeredBy !== undefined) notes.push(`--answered-by is ignored: outcome ${simOutcome} has no answer`);
    if (answeringNumber !== undefined) notes.push(`--answering-number is ignored: outcome ${simOutcome} has no answer`);
  }

  const callId = values['call-id'] ?? `sim-${randomBytes(6).toString('hex')}`;
  if (callId.trim() === '') throw new UsageError('--call-id must not be empty');
  if ([...callId].length > MAX_CALL_ID)
    throw new UsageError(
      `--call-id is longer than ${MAX_CALL_ID} characters: Zammad would cut it and then not find the call for ` +
        'answer/hangup',
    );

  let talkMs = 0;
  const rawTalk = values['talk-ms'];
  if (rawTalk !== undefined) {
    if (!/^\d+$/.test(rawTalk) || Number(rawTalk) > MAX_TALK_MS)
      throw new UsageError(
        `--talk-ms must be a whole number of milliseconds from 0 to ${MAX_TALK_MS} (got "${rawTalk}")`,
      );
    talkMs = Number(rawTalk);
    if (simOutcome !== 'answered' && talkMs > 0)
      notes.push(`--talk-ms is ignored: outcome ${simOutcome} has no answer`);
  }

  return { direction, from, to, users, answeredBy, answeringNumber, outcome: simOutcome, callId, talkMs };
}

/** A number from the command line, normalised the way the adapter does; `anonymous` only for --from. */
function number(option: string, raw: string, rules: NumberRules, mayBeWithheld: boolean, notes: string[]): string {
  if (mayBeWithheld && raw.trim().toLowerCase() === WITHHELD) return WITHHELD;
  const digits = toE164Digits(raw, rules);
  if (digits === '')
    throw new UsageError(
      `${option} "${oneLine(raw, 40)}" is not a phone number${mayBeWithheld ? ' (nor "anonymous")' : ''}`,
    );
  if (digits !== raw)
    notes.push(
      `${option} ${raw} → ${digits} (DEFAULT_COUNTRY_CODE ${rules.defaultCountryCode}, ` +
        `EXTENSION_MAX_DIGITS ${rules.extensionMaxDigits})`,
    );
  return digits;
}

/** `key=value` pairs of a form body, for printing. */
function fields(post: CtiPost): string {
  return [...new URLSearchParams(formBody(post))]
    .filter(([k]) => k !== 'event')
    .map(([k, v]) => `${k}=${/^[\w.+@-]+$/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
}

function replyText(outcome: HttpOutcome): string {
  if (outcome.kind === 'failure') return `no answer: ${outcome.code}: ${oneLine(outcome.error, 160)}`;
  const body = outcome.body.trim() === '' ? '(empty)' : oneLine(outcome.body, 200);
  return `${outcome.status} ${body}`;
}

function actionText(decision: Decision): string {
  switch (decision.kind) {
    case 'reject':
      return `reject${decision.reason ? ` (reason ${decision.reason})` : ''}`;
    case 'dial':
      return (
        'dial (caller id ' +
        `${typeof decision.callerId === 'string' ? decision.callerId : (JSON.stringify(decision.callerId) ?? 'none')})`
      );
    default:
      return 'none';
  }
}

interface Sent {
  ok: boolean;
  outcome: HttpOutcome;
  reason?: string;
  ms: number;
}

/**
 * Runs the simulation; returns the exit code (0 ok, 1 Zammad did not take the call as scripted, 2 usage/config error).
 */
export async function runSimulate(
  argv: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(SIMULATE_USAGE);
    return 0;
  }
  const config = configOrExit(env, out);
  if (config === 2) return 2;
  const endpoints = endpointsOrExit(config, out);
  if (endpoints === 2) return 2;
  const scrub = endpointsScrubber(endpoints);
  const say = (line: string): void => out(scrub(line));
  const at = argv.indexOf('--endpoint');
  const wanted = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0) argv = [...argv.slice(0, at), ...argv.slice(at + 2)];
  const endpoint =
    wanted !== undefined
      ? endpoints.find((e) => e.name === wanted)
      : (endpoints.find((e) => e.name === DEFAULT_ENDPOINT) ?? (endpoints.length === 1 ? endpoints[0] : undefined));
  if (!endpoint) {
    say(
      at >= 0
        ? `error: no endpoint "${wanted ?? ''}" (configured: ${endpoints.map((e) => e.name).join(', ') || 'none'})`
        : `error: several endpoints: choose one with --endpoint NAME (${endpoints.map((e) => e.name).join(', ')})`,
    );
    return 2;
  }

  const rules: NumberRules = {
    defaultCountryCode: config.DEFAULT_COUNTRY_CODE,
    extensionMaxDigits: config.EXTENSION_MAX_DIGITS,
  };
  const notes: string[] = [];
  let plan: Plan | 'help';
  try {
    plan = parse(argv, rules, notes);
  } catch (err) {
    if (err instanceof UsageError) {
      say(`error: ${err.message}`);
      say('Run "freeswitch-zammad-cti simulate --help" for the options.');
      return 2;
    }
    throw err;
  }
  if (plan === 'help') {
    out(SIMULATE_USAGE);
    return 0;
  }

  const client = clientFor(endpoint, config);
  try {
    return await simulate(plan, config, client, notes, say);
  } finally {
    await client.destroy();
  }
}

async function simulate(
  plan: Plan,
  config: Config,
  client: ZammadClient,
  notes: string[],
  say: (line: string) => void,
): Promise<number> {
  const { direction, from, to, callId } = plan;
  const base = { callId, direction, from, to };
  const label = direction === 'in' ? 'inbound' : 'outbound';

  say(`Simulating an ${label} call ${callId}: ${from} → ${to}, outcome ${plan.outcome}, to ${client.safeUrl}`);
  for (const n of notes) say(`  note: ${n}`);

  const summary: string[] = [];
  const send = async (post: CtiPost): Promise<Sent> => {
    say(`→ ${post.event} ${fields(post)}`);
    const started = Date.now();
    const outcome = await client.post(formBody(post), config.ZAMMAD_REQUEST_TIMEOUT_MS);
    const ms = Date.now() - started;
    let reason: string | undefined;
    if (
      post.event === 'newCall' &&
      outcome.kind === 'response' &&
      outcome.status === 500 &&
      /already exists/i.test(outcome.body)
    ) {
      // The adapter counts this as "stored by an earlier try"; here it means the call id was used before.
      reason =
        `Zammad already has a call ${callId}: ` +
        'choose another --call-id ' +
        '(answer/hangup would change the old call)';
    } else {
      const v = verdictOf(post.event, outcome);
      if (v.kind !== 'delivered') reason = v.reason;
    }
    const ok = reason === undefined;
    const tail =
      post.event === 'newCall' && ok && outcome.kind === 'response'
        ? ` → action: ${actionText(decisionFromReply(outcome.body).decision)}`
        : '';
    say(`← ${replyText(outcome)} (${ms} ms)${tail}`);
    if (!ok) say(`  ✗ ${post.event} not accepted: ${reason ?? ''}`);
    summary.push(
      `${post.event} ${outcome.kind === 'response' ? outcome.status : outcome.code}${ok ? '' : ' ✗'}` +
        `${post.event === 'hangup' ? ` (${post.cause})` : ''}`,
    );
    return { ok, outcome, ms, ...(reason !== undefined ? { reason } : {}) };
  };

  // 1. newCall
  const newCall: NewCallPost = { event: 'newCall', ...base, users: plan.users };
  const nc = await send(newCall);
  if (!nc.ok) {
    say('Nothing more sent: without a stored newCall Zammad refuses answer and hangup for this call.');
    if (
      nc.outcome.kind === 'failure' ||
      (nc.outcome.kind === 'response' && [301, 302, 303, 307, 308, 401, 403, 404, 422].includes(nc.outcome.status))
    ) {
      say('Run "freeswitch-zammad-cti check" to test the URL, the token and the integration.');
    }
    say(`Summary: ${label} call ${callId} ${from} → ${to}: ${summary.join(' · ')}`);
    say('Result: FAILED');
    return 1;
  }
  if (nc.ms > config.ZAMMAD_NEWCALL_TIMEOUT_MS) {
    say(
      `  note: Zammad took ${nc.ms} ms to answer newCall; a ringing call waits only ` +
        `ZAMMAD_NEWCALL_TIMEOUT_MS=${config.ZAMMAD_NEWCALL_TIMEOUT_MS} ms for it, ` +
        "then is bridged without Zammad's decision",
    );
  }

  const body = nc.outcome.kind === 'response' ? nc.outcome.body : '';
  const { decision, note } = decisionFromReply(body);
  if (note !== undefined) say(`  note: ${note}`);
  let failed = false;
  let rejected = false;
  if (decision.kind === 'reject') {
    if (direction === 'in') {
      rejected = true;
      say(
        `  Zammad rejects this caller (${from} is on its block list): the adapter hangs up with USER_BUSY, ` +
          'never rings anyone, and reports hangup cause busy',
      );
      if (plan.outcome !== 'rejected')
        say(`  note: the scripted outcome ${plan.outcome} is replaced by what the adapter would do`);
    } else {
      say('  note: Zammad asked to reject an outbound call; the adapter ignores that and bridges');
    }
  } else if (decision.kind === 'dial') {
    if (direction === 'out') {
      const callerId = safeCallerId(decision.callerId);
      if (callerId !== null)
        say(
          `  Zammad sets the caller id ${callerId}: the adapter dials ${to} with ` +
            `effective_caller_id_number=${callerId}`,
        );
      else
        say(
          '  note: Zammad sent a caller id that is not an E.164 number: the adapter would ignore it and keep the ' +
            'original caller id',
        );
    } else {
      say('  note: Zammad sent a caller id for an inbound call: the adapter ignores it');
    }
  } else if (direction === 'out') {
    say('  Zammad sets no caller id for this destination (no matching outbound route, no default caller id)');
  }
  if (plan.outcome === 'rejected' && !rejected) {
    failed = true;
    say(
      `  ✗ expected Zammad to reject ${from}, but it did not: add exactly "${from}" to Zammad → Admin → ` +
        'Integrations → CTI (generic) → blocked caller ids (no prefix match, no normalisation)',
    );
  }

  // 2. answer (3. hangup)
  let answered = false;
  let answeringNumber: string | undefined;
  let answerUser: string | undefined;
  let cause: ZammadCause;
  if (rejected || plan.outcome === 'rejected') {
    cause = 'busy';
  } else if (plan.outcome === 'answered') {
    answeringNumber = plan.answeringNumber ?? to;
    const answer: AnswerPost = { event: 'answer', ...base, answeringNumber };
    if (direction === 'in') {
      // The adapter always names someone on an inbound answer: directory name, the only user, else the number.
      answerUser = plan.answeredBy ?? (plan.users.length === 1 ? plan.users[0] : undefined) ?? answeringNumber;
      answer.user = answerUser;
    }
    const an = await send(answer);
    if (an.ok) answered = true;
    else {
      failed = true;
      say('  the hangup is sent anyway, so that Zammad does not show the call as ringing forever');
    }
    if (an.ok && plan.talkMs > 0) {
      say(`  … talking for ${plan.talkMs} ms`);
      await sleep(plan.talkMs);
    }
    cause = 'normalClearing';
  } else {
    cause = plan.outcome;
  }

  const hangup: HangupPost = { event: 'hangup', ...base, cause };
  if (answered && answeringNumber !== undefined) hangup.answeringNumber = answeringNumber;
  const hu = await send(hangup);
  if (!hu.ok) failed = true;

  say(`Summary: ${label} call ${callId} ${from} → ${to}: ${summary.join(' · ')}`);
  if (!failed) {
    say(
      '  Zammad accepted every event. Its caller log should show: ' +
        `${expectedEntry(direction, answered, answerUser, cause)}`,
    );
    say('Result: OK');
    return 0;
  }
  say('Result: FAILED');
  return 1;
}

/** What Zammad's caller log makes of the call (docs/reference/zammad.md, "State per call"). */
function expectedEntry(direction: Direction, answered: boolean, user: string | undefined, cause: ZammadCause): string {
  if (answered) {
    if (direction === 'in' && user === 'voicemail') return 'answered by voicemail, marked as missed (not done)';
    return `answered${user !== undefined ? ` by ${user}` : ''}, done`;
  }
  if (direction === 'in' && cause !== 'forwarded') return `a missed call (not done), cause ${CAUSE_SHOWN[cause]}`;
  return `not answered, done, cause ${CAUSE_SHOWN[cause]}`;
}
