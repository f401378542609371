/**
 * FreeSWITCH switch double: plays the part of FreeSWITCH 1.10.12 running
 *   <action application="socket" data="127.0.0.1:8084 async full"/>
 * i.e. it CONNECTS to the adapter's TCP listener (outbound event socket) and speaks the real wire
 * protocol, then simulates the caller's channel (the "A-leg" the socket controls) and the
 * originate/bridge of the adapter's dial strings.
 *
 * Facts it relies on (each with its source):
 *  [T]  test/fixtures/esl/*.txt (real captures, FreeSWITCH 1.10.12) and README.md there
 *  [F]  docs/reference/freeswitch.md (group rings, privacy, causes on a real switch)
 *  [ES] mod_event_socket.c (1.10): parse_command(), read_packet(), listener_run(), socket_function(),
 *       event_handler() – command replies, myevents/event/linger semantics, disconnect handling
 *  [OR] switch_ivr_originate.c (1.10): DIALSTATUS mapping, originate_causes, LOSE_RACE for losers,
 *       private events parsed while ringing (switch_ivr_parse_all_events in the ring loop),
 *       `|` failover stops on timeout unless continue_on_timeout
 *  [DP] mod_dptools.c: user/ endpoint sets dialed_user/dialed_domain on the caller channel per leg
 *  [MC] mod_commands.c: user_data writes nothing for an unknown user -> api_exec answers "-ERR no reply\n"
 *  [EV] switch_event.c / switch_utils.c: serialisation, switch_url_encode (see esl-wire.ts)
 *
 *  [T routing] test/fixtures/esl/routing/*.txt: the dialplan routes (hand-back by transfer, REFER, uuid_transfer,
 *       voicemail, mod_callcenter), README.md there (observations 1-11)
 *  [T transfers] test/fixtures/esl/transfers/*.txt: pickup, att_xfer, park/retrieve, eavesdrop (someone
 *       else's uuid_bridge), README.md there
 *
 * Not modelled (see the report): B-leg events (an outbound socket with myevents never sees them),
 * CHANNEL_CALLSTATE/HEARTBEAT/other system events for `event ... ALL` listeners, the other phones' own
 * channels (an attended transfer's consultation, a picker's dialplan: only what reaches the caller),
 * execute_extension (obs. 3), dialplan regex matching / continue="true" chains (one extension per
 * exact number), sendmsg's other than hangup after the hand-back, a transfer of a still ringing
 * caller beyond ending its originate, media, `failure_causes`, enterprise originate (:_:).
 */
// The simulator, file by file:
//   call-script.ts           what a call is given (CallScript, ChannelSpec, TargetBehaviour) and returns (SwitchCall)
//   fake-switch.ts           FakeSwitch: the instance; placeCall() opens one connection per call
//   outbound-connection.ts   one outbound-socket connection: commands in, replies and events out
//   chunked-output.ts        the connection's writes, whole or cut into pieces
//   api-commands.ts          `api`/`bgapi` commands
//   channel-events.ts        the caller channel's variables, profile blocks and events
//   originate.ts             bridge/originate: B-legs, ring groups, failover, causes
//   dialplan.ts              routing by a scripted dialplan: transfer/hand-back, REFER, uuid_transfer, voicemail,
//                            callcenter
//   caller-channel.ts        the caller channel's application queue, park, hangup, CDR variables
//   uuid-bridge.ts           someone else uuid_bridges the caller: pickup, att_xfer, retrieve from park; eavesdrop
//   dial-string.ts           dial-string parsing
//   event-blocks.ts          header blocks and lazily serialised events
//   transcript-constants.ts  causes, SIP statuses, applications, event names as FreeSWITCH has them
//   util.ts                  timestamps, tokens, the seeded PRNG, switch_true()
//   esl-wire.ts              the wire framing (shared with the Zammad side's tests and the bench)
export type {
  ChannelSpec,
  TargetBehaviour,
  PhoneAct,
  AttXfer,
  DialplanApp,
  QueueSpec,
  Chunking,
  LingerNoticeAt,
  CallScript,
  ReceivedCommand,
  SentFrame,
  SwitchCall,
} from './call-script.js';
export type { FiredEvent } from './event-blocks.js';
export { FakeSwitch, defaultSwitch, placeCall } from './fake-switch.js';
export { parseDialString, targetKey } from './dial-string.js';
export { prng } from './util.js';
