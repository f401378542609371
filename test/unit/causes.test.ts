import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  FAILED_BRIDGE_CAUSES,
  ZAMMAD_CAUSES,
  causeOfFailedBridge,
  isCallerCancel,
  type ZammadCause,
} from '../../src/call/causes.js';

/**
 * Every name in FreeSWITCH's CAUSE_CHART (src/switch_channel.c, 1.10.x), in its order, with the
 * bucket we expect. Written out independently of the module's table so that moving a cause to
 * another bucket, or dropping one, fails here.
 */
const EXPECTED: readonly (readonly [string, ZammadCause])[] = [
  ['NONE', 'congestion'],
  ['UNALLOCATED_NUMBER', 'notFound'],
  ['NO_ROUTE_TRANSIT_NET', 'notFound'],
  ['NO_ROUTE_DESTINATION', 'notFound'],
  ['CHANNEL_UNACCEPTABLE', 'congestion'],
  ['CALL_AWARDED_DELIVERED', 'congestion'],
  ['NORMAL_CLEARING', 'noAnswer'],
  ['USER_BUSY', 'busy'],
  ['NO_USER_RESPONSE', 'noAnswer'],
  ['NO_ANSWER', 'noAnswer'],
  ['SUBSCRIBER_ABSENT', 'notFound'],
  ['CALL_REJECTED', 'noAnswer'],
  ['NUMBER_CHANGED', 'notFound'],
  ['REDIRECTION_TO_NEW_DESTINATION', 'forwarded'],
  ['EXCHANGE_ROUTING_ERROR', 'congestion'],
  ['DESTINATION_OUT_OF_ORDER', 'congestion'],
  ['INVALID_NUMBER_FORMAT', 'notFound'],
  ['FACILITY_REJECTED', 'congestion'],
  ['RESPONSE_TO_STATUS_ENQUIRY', 'congestion'],
  ['NORMAL_UNSPECIFIED', 'congestion'],
  ['NORMAL_CIRCUIT_CONGESTION', 'congestion'],
  ['NETWORK_OUT_OF_ORDER', 'congestion'],
  ['NORMAL_TEMPORARY_FAILURE', 'congestion'],
  ['SWITCH_CONGESTION', 'congestion'],
  ['ACCESS_INFO_DISCARDED', 'congestion'],
  ['REQUESTED_CHAN_UNAVAIL', 'congestion'],
  ['PRE_EMPTED', 'congestion'],
  ['FACILITY_NOT_SUBSCRIBED', 'congestion'],
  ['OUTGOING_CALL_BARRED', 'congestion'],
  ['INCOMING_CALL_BARRED', 'congestion'],
  ['BEARERCAPABILITY_NOTAUTH', 'congestion'],
  ['BEARERCAPABILITY_NOTAVAIL', 'congestion'],
  ['SERVICE_UNAVAILABLE', 'congestion'],
  ['BEARERCAPABILITY_NOTIMPL', 'congestion'],
  ['CHAN_NOT_IMPLEMENTED', 'congestion'],
  ['FACILITY_NOT_IMPLEMENTED', 'congestion'],
  ['SERVICE_NOT_IMPLEMENTED', 'congestion'],
  ['INVALID_CALL_REFERENCE', 'congestion'],
  ['INCOMPATIBLE_DESTINATION', 'congestion'],
  ['INVALID_MSG_UNSPECIFIED', 'congestion'],
  ['MANDATORY_IE_MISSING', 'congestion'],
  ['MESSAGE_TYPE_NONEXIST', 'congestion'],
  ['WRONG_MESSAGE', 'congestion'],
  ['IE_NONEXIST', 'congestion'],
  ['INVALID_IE_CONTENTS', 'congestion'],
  ['WRONG_CALL_STATE', 'congestion'],
  ['RECOVERY_ON_TIMER_EXPIRE', 'congestion'],
  ['MANDATORY_IE_LENGTH_ERROR', 'congestion'],
  ['PROTOCOL_ERROR', 'congestion'],
  ['INTERWORKING', 'congestion'],
  ['SUCCESS', 'congestion'],
  ['ORIGINATOR_CANCEL', 'cancel'],
  ['CRASH', 'congestion'],
  ['SYSTEM_SHUTDOWN', 'congestion'],
  ['LOSE_RACE', 'forwarded'],
  ['MANAGER_REQUEST', 'congestion'],
  ['BLIND_TRANSFER', 'forwarded'],
  ['ATTENDED_TRANSFER', 'forwarded'],
  ['ALLOTTED_TIMEOUT', 'noAnswer'],
  ['USER_CHALLENGE', 'congestion'],
  ['MEDIA_TIMEOUT', 'congestion'],
  ['PICKED_OFF', 'forwarded'],
  ['USER_NOT_REGISTERED', 'notFound'],
  ['PROGRESS_TIMEOUT', 'noAnswer'],
  ['INVALID_GATEWAY', 'congestion'],
  ['GATEWAY_DOWN', 'congestion'],
  ['INVALID_URL', 'notFound'],
  ['INVALID_PROFILE', 'congestion'],
  ['NO_PICKUP', 'noAnswer'],
  ['SRTP_READ_ERROR', 'congestion'],
  ['BOWOUT', 'congestion'],
  ['BUSY_EVERYWHERE', 'busy'],
  ['DECLINE', 'noAnswer'],
  ['DOES_NOT_EXIST_ANYWHERE', 'notFound'],
  ['NOT_ACCEPTABLE', 'congestion'],
  ['UNWANTED', 'noAnswer'],
  ['NO_IDENTITY', 'congestion'],
  ['BAD_IDENTITY_INFO', 'congestion'],
  ['UNSUPPORTED_CERTIFICATE', 'congestion'],
  ['INVALID_IDENTITY', 'congestion'],
  ['STALE_DATE', 'congestion'],
  ['REJECT_ALL', 'noAnswer'],
];

describe('causeOfFailedBridge: every FreeSWITCH cause', () => {
  for (const [fsCause, expected] of EXPECTED) {
    it(`${fsCause} -> ${expected}`, () => {
      assert.equal(causeOfFailedBridge(fsCause), expected);
    });
  }

  it('the table holds exactly the FreeSWITCH cause names, each once', () => {
    const names = EXPECTED.map(([name]) => name);
    assert.equal(new Set(names).size, names.length, 'duplicate in the expected list');
    assert.deepEqual(Object.keys(FAILED_BRIDGE_CAUSES).sort(), [...names].sort());
  });

  it('every bucket is one of Zammad causes, and normalClearing is never used for a failed bridge', () => {
    for (const bucket of Object.values(FAILED_BRIDGE_CAUSES)) {
      assert.ok((ZAMMAD_CAUSES as readonly string[]).includes(bucket), bucket);
      assert.notEqual(bucket, 'normalClearing');
    }
  });

  it('the table is frozen', () => {
    assert.ok(Object.isFrozen(FAILED_BRIDGE_CAUSES));
    assert.throws(() => {
      (FAILED_BRIDGE_CAUSES as Record<string, ZammadCause>)['USER_BUSY'] = 'noAnswer';
    }, TypeError);
    assert.equal(causeOfFailedBridge('USER_BUSY'), 'busy');
  });
});

describe('causeOfFailedBridge: input handling', () => {
  const rows: readonly (readonly [string, ZammadCause, string])[] = [
    ['user_busy', 'busy', 'lower case'],
    ['User_Busy', 'busy', 'mixed case'],
    ['  NO_ANSWER\n', 'noAnswer', 'surrounding whitespace'],
    ['originator_cancel', 'cancel', 'lower case cancel'],
    ['', 'congestion', 'empty'],
    ['   ', 'congestion', 'blank'],
    ['SOMETHING_NEW', 'congestion', 'unknown name'],
    ['DEFLECTION', 'congestion', 'not a FreeSWITCH cause name'],
    ['17', 'congestion', 'numeric Q.850 code is not a name'],
    ['USER BUSY', 'congestion', 'space instead of underscore'],
    ['normalClearing', 'congestion', "Zammad's spelling is not a FreeSWITCH name (NORMALCLEARING)"],
    ['__proto__', 'congestion', 'prototype key'],
    ['constructor', 'congestion', 'Object.prototype member'],
    ['toString', 'congestion', 'Object.prototype member'],
    ['hasOwnProperty', 'congestion', 'Object.prototype member'],
  ];
  for (const [input, expected, why] of rows) {
    it(`${JSON.stringify(input)} -> ${expected} (${why})`, () => {
      assert.equal(causeOfFailedBridge(input), expected);
    });
  }
  it('does not throw on non-strings at runtime', () => {
    for (const v of [undefined, null, 17, {}]) {
      assert.equal(causeOfFailedBridge(v as unknown as string), 'congestion');
    }
  });
});

describe('isCallerCancel', () => {
  it('is true only for ORIGINATOR_CANCEL, case-insensitive and trimmed', () => {
    assert.equal(isCallerCancel('ORIGINATOR_CANCEL'), true);
    assert.equal(isCallerCancel('originator_cancel'), true);
    assert.equal(isCallerCancel(' Originator_Cancel \n'), true);
    for (const [name] of EXPECTED) {
      if (name !== 'ORIGINATOR_CANCEL') assert.equal(isCallerCancel(name), false, name);
    }
    assert.equal(isCallerCancel(''), false);
    assert.equal(isCallerCancel('cancel'), false);
    assert.equal(isCallerCancel(undefined as unknown as string), false);
  });
});
