/** The adapter's figures in Prometheus form (prom-client), on a registry of its own. */
import client from 'prom-client';

export class Metrics {
  readonly registry = new client.Registry();
  readonly callsInProgress = new client.Gauge({
    name: 'cti_calls_in_progress',
    help: 'Calls whose event socket is open',
    registers: [this.registry],
  });
  readonly callsTotal = new client.Counter({
    name: 'cti_calls_total',
    help: 'Calls ended, by the cause reported to Zammad',
    labelNames: ['cause'],
    registers: [this.registry],
  });
  readonly posts = new client.Counter({
    name: 'cti_zammad_posts_total',
    help: 'Requests to Zammad, by event and HTTP status (or error code)',
    labelNames: ['endpoint', 'event', 'status'],
    registers: [this.registry],
  });
  readonly postSeconds = new client.Histogram({
    name: 'cti_zammad_post_seconds',
    help: 'Time for one request to Zammad',
    labelNames: ['endpoint', 'event'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly decisionSeconds = new client.Histogram({
    name: 'cti_newcall_decision_seconds',
    help: 'Time from newCall to the decision the switch acts on (reject, dial, continue, timeout, error)',
    labelNames: ['endpoint', 'decision'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  readonly verdictSkipped = new client.Counter({
    name: 'cti_newcall_verdict_skipped_total',
    help:
      "Calls that went on at once without waiting for Zammad's decision, by reason: " +
      'unreachable (Zammad known down), overload (the adapter is behind: cti_overload_level)',
    labelNames: ['endpoint', 'reason'],
    registers: [this.registry],
  });
  readonly outboxDepth = new client.Gauge({
    name: 'cti_outbox_events',
    help: 'Events waiting for Zammad, by endpoint',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  readonly outboxAge = new client.Gauge({
    name: 'cti_outbox_oldest_seconds',
    help: 'Age of the oldest event waiting for Zammad, by endpoint',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  readonly dropped = new client.Counter({
    name: 'cti_outbox_dropped_total',
    help:
      'Events dropped from the outbox, by reason: age (too old), full (OUTBOX_MAX_EVENTS), ' +
      'refused (Zammad will never take it), ' +
      "unconfirmed (a missed call's hangup that may have reached Zammad: never sent twice)",
    labelNames: ['endpoint', 'reason'],
    registers: [this.registry],
  });
  readonly zammadConfigFault = new client.Gauge({
    name: 'cti_zammad_config_fault',
    help: '1 while Zammad refuses every event (wrong token, integration disabled), by endpoint',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  readonly writeFailures = new client.Counter({
    name: 'cti_outbox_write_failures_total',
    help:
      'Commits of the outbox that the disk refused (disk full, read-only, I/O error); ' +
      'what they held waits in memory and is retried',
    registers: [this.registry],
  });
  readonly outboxUnstored = new client.Gauge({
    name: 'cti_outbox_unstored_events',
    help: 'Events held only in memory because the disk refuses writes, by endpoint: a crash would lose them',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  readonly held = new client.Counter({
    name: 'cti_outbox_held_total',
    help:
      'Events kept for an endpoint that is not configured (gone from ZAMMAD_ENDPOINTS_FILE): ' +
      'not sent until it is again',
    labelNames: ['endpoint'],
    registers: [this.registry],
  });
  readonly callsUnrouted = new client.Counter({
    name: 'cti_calls_unrouted_total',
    help:
      'Calls not reported to any Zammad: no-match (no endpoint for the domain, no ZAMMAD_CTI_URL) ' +
      'or unknown-endpoint (zammad_endpoint names none)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly rejectedConnections = new client.Counter({
    name: 'cti_esl_rejected_connections_total',
    help: 'Event-socket connections refused (address outside ESL_ALLOW)',
    registers: [this.registry],
  });
  readonly eslErrors = new client.Counter({
    name: 'cti_esl_connection_errors_total',
    help: 'Event-socket connections closed for a fault, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly overloadLevel = new client.Gauge({
    name: 'cti_overload_level',
    help:
      "Overload level: 0 normal, 1 calls go on without waiting for Zammad's decision, " +
      '2 also shedding new calls (only a share is taken, the others are handed back to the dialplan unreported)',
    registers: [this.registry],
  });
  readonly overloadEntered = new client.Counter({
    name: 'cti_overload_entered_total',
    help: 'Times an overload level was entered from a lower one, by level (1, 2)',
    labelNames: ['level'],
    registers: [this.registry],
  });
  readonly sheddingSeconds = new client.Counter({
    name: 'cti_overload_shedding_seconds_total',
    help: 'Time spent at overload level 2, shedding new calls',
    registers: [this.registry],
  });
  readonly callsShed = new client.Counter({
    name: 'cti_overload_calls_shed_total',
    help:
      'Calls handed back to the dialplan at once for overload, without the adapter: routed by the gate, ' +
      "missing from Zammad's caller log",
    registers: [this.registry],
  });
  readonly admitRatio = new client.Gauge({
    name: 'cti_overload_admit_ratio',
    help: 'Share of new calls taken (1 below overload level 2)',
    registers: [this.registry],
  });
  readonly loopDelay = new client.Gauge({
    name: 'cti_event_loop_delay_seconds',
    help: 'How late the event loop ran the overload sampler last (every 100 ms)',
    registers: [this.registry],
  });
  readonly callsPending = new client.Gauge({
    name: 'cti_calls_pending',
    help: 'Calls accepted whose routing command (hand-back, bridge, reject) has not gone out yet',
    registers: [this.registry],
  });
  readonly newCallsUnanswered = new client.Gauge({
    name: 'cti_newcall_unanswered',
    help: 'newCalls posted that Zammad has not answered yet (not counting those it cannot answer: unreachable, fault)',
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'cti_' });
  }
}
